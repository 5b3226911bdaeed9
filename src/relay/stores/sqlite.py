"""The SQLite store backend: suppressions, consent records and sender profiles in one file (WAL).

Tables (addresses are keyed by their HMAC, kept as 32-byte blobs; clear addresses only when
`keep_addresses` is set):

    suppressions     (address_hash, sender_id, list_key) primary key; list_key is '' for a
                     sender-wide entry and the list id for a sender+list entry
    consents         record_id primary key; index (address_hash, sender_id, obtained_at)
    senders          sender_id primary key; domains and users as JSON arrays
    sender_users     SMTP AUTH name -> sender_id (primary key: one sender per name)
    sender_domains   verified From domain -> sender_id (primary key: one sender per domain)
    soft_bounces     (address_hash, sender_id, source) primary key: one row per bounce message,
                     so a bounce processed twice (after a crash) counts once
    sender_pauses    journal of pauses and resumes of senders' commercial streams (seq order;
                     the latest row of a sender is its state); audit_ref is NULL until the
                     change is in the audit log (the process that holds the log writes it)
    api_tokens       admin API bearer tokens: the SHA-256 of each secret, its role and name
    subject_requests data subjects' requests (GDPR Art. 15-21) with their due time
                     (EU-RESPONSE-1M); index (due_at, request_id) for the open list

Suppression listings and exports page by (sender_id, address_hash, list_key), an index, so a
page is one seek. The writer runs with `secure_delete`: what an erasure deletes is overwritten
in the file, and the write-ahead log is checkpointed and truncated after it, so no clear copy
of an erased address stays in the store's files.

The list-health figures (relay.stores.stats) keep their own tables in the same file; `stats`
opens and closes with the stores.

Every lookup at RCPT is one indexed point query on one long-lived connection. Writes go through a
second connection, one transaction each under a lock, so a large import never makes RCPT lookups
wait behind it (WAL readers do not block on the writer) and a lookup never sees half an import.
Datetimes are stored as UTC ISO 8601 text with microseconds, which sorts in time order.
sqlite3 errors become StoreUnavailable in `store_errors` (relay.stores.sqlite_base).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from relay.config.model import Settings
from relay.errors import StoreConflict, StoreUnavailable
from relay.stores.base import refuse_repeated_ids, refuse_stored_ids
from relay.stores.hashing import AddressHasher, load_or_create_key
from relay.stores.models import (
    ApiRole,
    ApiToken,
    ConsentBasis,
    ConsentRecord,
    ErasureResult,
    MessageClass,
    PauseAction,
    PauseChange,
    SenderProfile,
    SoftBounce,
    SubjectRequest,
    SubjectRequestKind,
    SuppressionEntry,
    SuppressionKey,
    SuppressionQuery,
    SuppressionReason,
    SuppressionScope,
)
from relay.stores.sqlite_base import connect, store_errors
from relay.stores.stats import SqliteStats

__all__ = ["SCHEMA_VERSION", "SqliteStores"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    address_hash BLOB NOT NULL,
    sender_id TEXT NOT NULL,
    list_key TEXT NOT NULL,
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    list_id TEXT,
    source_message_id TEXT,
    address TEXT,
    audit_ref TEXT,
    PRIMARY KEY (address_hash, sender_id, list_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consents (
    record_id TEXT PRIMARY KEY,
    address_hash BLOB NOT NULL,
    sender_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    basis TEXT NOT NULL,
    jurisdictions TEXT NOT NULL,
    obtained_at TEXT NOT NULL,
    source TEXT NOT NULL,
    evidence_ref TEXT NOT NULL,
    notice_version TEXT,
    affirmative_action INTEGER NOT NULL,
    bundled INTEGER NOT NULL,
    expires_at TEXT,
    withdrawn_at TEXT,
    product_category TEXT,
    address TEXT,
    time_zone TEXT
);
CREATE INDEX IF NOT EXISTS consents_by_recipient
    ON consents (address_hash, sender_id, obtained_at);
CREATE TABLE IF NOT EXISTS senders (
    sender_id TEXT PRIMARY KEY,
    legal_name TEXT NOT NULL,
    postal_address TEXT NOT NULL,
    contact TEXT NOT NULL,
    verified_domains TEXT NOT NULL,
    default_jurisdiction TEXT,
    message_class TEXT NOT NULL,
    users TEXT NOT NULL,
    fix_us INTEGER NOT NULL DEFAULT 0,
    fixes_allowed INTEGER NOT NULL DEFAULT 1,
    bounce_domain TEXT,
    time_zone TEXT
);
CREATE TABLE IF NOT EXISTS sender_users (
    user TEXT PRIMARY KEY,
    sender_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sender_domains (
    domain TEXT PRIMARY KEY,
    sender_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sender_users_by_sender ON sender_users (sender_id);
CREATE INDEX IF NOT EXISTS sender_domains_by_sender ON sender_domains (sender_id);
CREATE TABLE IF NOT EXISTS soft_bounces (
    address_hash BLOB NOT NULL,
    sender_id TEXT NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    status TEXT,
    reason TEXT NOT NULL,
    PRIMARY KEY (address_hash, sender_id, source)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS soft_bounces_by_time ON soft_bounces (address_hash, sender_id, at);
CREATE TABLE IF NOT EXISTS sender_pauses (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id TEXT NOT NULL,
    action TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    audit_ref TEXT
);
CREATE INDEX IF NOT EXISTS sender_pauses_by_sender ON sender_pauses (sender_id, seq);
CREATE INDEX IF NOT EXISTS sender_pauses_unrecorded ON sender_pauses (seq) WHERE audit_ref IS NULL;
CREATE TABLE IF NOT EXISTS api_tokens (
    token_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    sender_id TEXT,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS suppressions_by_sender
    ON suppressions (sender_id, address_hash, list_key);
CREATE TABLE IF NOT EXISTS subject_requests (
    request_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    address_hash BLOB NOT NULL,
    sender_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    completed_at TEXT,
    note TEXT,
    address TEXT,
    audit_ref TEXT
);
CREATE INDEX IF NOT EXISTS subject_requests_by_due ON subject_requests (due_at, request_id);
CREATE INDEX IF NOT EXISTS subject_requests_by_recipient
    ON subject_requests (address_hash, sender_id);
"""
# After the columns a store made before them lacks have been added.
_INDEXES = "CREATE INDEX IF NOT EXISTS senders_by_bounce_domain ON senders (bounce_domain)"

_SUPPRESSION_COLUMNS = (
    "address_hash, sender_id, scope, reason, source, received_at, list_id, source_message_id,"
    " address, audit_ref"
)
_CONSENT_COLUMNS = (
    "record_id, address_hash, sender_id, scope, basis, jurisdictions, obtained_at, source,"
    " evidence_ref, notice_version, affirmative_action, bundled, expires_at, withdrawn_at,"
    " product_category, address, time_zone"
)
_SENDER_COLUMNS = (
    "sender_id, legal_name, postal_address, contact, verified_domains, default_jurisdiction,"
    " message_class, users, fix_us, fixes_allowed, bounce_domain, time_zone"
)

# Columns added after the first release: a store made before them gets them at open.
_ADDED_COLUMNS = {
    "senders": (
        ("fix_us", "INTEGER NOT NULL DEFAULT 0"),
        ("fixes_allowed", "INTEGER NOT NULL DEFAULT 1"),
        ("bounce_domain", "TEXT"),
        ("time_zone", "TEXT"),
    ),
    "suppressions": (("audit_ref", "TEXT"),),
    "consents": (("time_zone", "TEXT"),),
}

_PAUSE_COLUMNS = "sender_id, action, at, reason, source, seq"
_TOKEN_COLUMNS = "token_id, name, role, secret_hash, created_at, sender_id, revoked_at"
_REQUEST_COLUMNS = (
    "request_id, kind, address_hash, sender_id, received_at, due_at, completed_at, note,"
    " address, audit_ref"
)

_CHUNK = 500  # host parameters per IN (...) list, well below SQLite's limit


def _domain_key(domain: str) -> str:
    return domain.strip().lower().rstrip(".")


def _to_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r}: the stores keep timezone-aware datetimes only")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _optional_text(moment: datetime | None) -> str | None:
    return None if moment is None else _to_text(moment)


def _from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _optional_datetime(text: str | None) -> datetime | None:
    return None if text is None else _from_text(text)


class SqliteStores:
    """The Stores protocol on one SQLite file. Use from one event loop; `open` before use."""

    def __init__(self, path: Path, hasher: AddressHasher, keep_addresses: bool) -> None:
        self.path = path
        self.hasher = hasher
        self.keep_addresses = keep_addresses
        self._reader: aiosqlite.Connection | None = None
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.stats = SqliteStats(path)

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteStores:
        """Stores at settings.stores_path, keyed from settings.hmac_key_path (created on first
        use); raises ConfigError when the key file is unusable."""
        hasher = AddressHasher(load_or_create_key(settings.hmac_key_path))
        return cls(settings.stores_path, hasher, settings.audit.keep_addresses)

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        async with store_errors(self.path, "open the stores"):
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            try:
                self._writer = await connect(self.path)
                # Overwrite deleted content (erasure: no clear address left in free space).
                await self._writer.execute("PRAGMA secure_delete=ON")
                await self._create_schema(self._writer)
                self._reader = await connect(self.path)
                await self.stats.open()
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        await self.stats.close()
        for db in (self._reader, self._writer):
            if db is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):  # nothing left to protect
                    await db.close()
        self._reader = self._writer = None

    async def __aenter__(self) -> SqliteStores:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _create_schema(self, db: aiosqlite.Connection) -> None:
        ((version,),) = await db.execute_fetchall("PRAGMA user_version")
        if int(version) > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"{self.path}: store schema version {version} is newer than this relay"
                f" understands ({SCHEMA_VERSION})"
            )
        await db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    await db.execute(statement)
            for table, added in _ADDED_COLUMNS.items():
                rows = await db.execute_fetchall(f"PRAGMA table_info({table})")
                columns = {row[1] for row in rows}
                for column, definition in added:
                    if column not in columns:
                        await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            await db.execute(_INDEXES)
            await db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            await db.execute("COMMIT")
        except BaseException:
            await _roll_back(db)
            raise

    def _read_db(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreUnavailable(f"{self.path}: the stores are not open")
        return self._reader

    @asynccontextmanager
    async def _transaction(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction on the writer connection: committed when the block ends,
        rolled back when it raises."""
        async with store_errors(self.path, doing), self._write_lock:
            db = self._writer
            if db is None:
                raise StoreUnavailable(f"{self.path}: the stores are not open")
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                await _roll_back(db)
                raise

    # -- lookups at RCPT ---------------------------------------------------------------------

    async def suppression_for(
        self, address: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        key = self.hasher.digest(address)
        async with store_errors(self.path, "look up a suppression"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions"
                " WHERE address_hash = ? AND sender_id = ? AND list_key IN ('', ?)"
                " ORDER BY list_key LIMIT 1",  # '' (sender-wide) sorts first
                (key, sender_id, list_id or ""),
            )
            for row in rows:
                return self._suppression(tuple(row))
        return None

    async def consents_for(self, address: str, sender_id: str) -> list[ConsentRecord]:
        key = self.hasher.digest(address)
        async with store_errors(self.path, "look up consent records"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_CONSENT_COLUMNS} FROM consents"
                " WHERE address_hash = ? AND sender_id = ?"
                " ORDER BY obtained_at DESC, record_id DESC",
                (key, sender_id),
            )
            return [self._consent(tuple(row)) for row in rows]

    async def sender_for_user(self, user: str) -> SenderProfile | None:
        return await self._sender_by(
            f"SELECT {_SENDER_COLUMNS} FROM sender_users JOIN senders USING (sender_id)"
            " WHERE user = ?",
            user,
        )

    async def sender_for_domain(self, domain: str) -> SenderProfile | None:
        return await self._sender_by(
            f"SELECT {_SENDER_COLUMNS} FROM sender_domains JOIN senders USING (sender_id)"
            " WHERE domain = ?",
            _domain_key(domain),
        )

    async def sender_for_bounce_domain(self, domain: str) -> SenderProfile | None:
        key = _domain_key(domain)
        try:
            unicode_key = key.encode("ascii").decode("idna")  # VERP addresses use A-labels
        except UnicodeError:
            unicode_key = key
        async with store_errors(self.path, "look up a sender profile"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_SENDER_COLUMNS} FROM senders WHERE bounce_domain IN (?, ?)"
                " ORDER BY sender_id LIMIT 1",
                (key, unicode_key),
            )
            for row in rows:
                return self._sender(tuple(row))
        return None

    async def sender(self, sender_id: str) -> SenderProfile | None:
        return await self._sender_by(
            f"SELECT {_SENDER_COLUMNS} FROM senders WHERE sender_id = ?", sender_id
        )

    async def senders(self) -> list[SenderProfile]:
        async with store_errors(self.path, "list sender profiles"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_SENDER_COLUMNS} FROM senders ORDER BY sender_id"
            )
            return [self._sender(tuple(row)) for row in rows]

    async def _sender_by(self, query: str, value: str) -> SenderProfile | None:
        async with store_errors(self.path, "look up a sender profile"):
            rows = await self._read_db().execute_fetchall(query, (value,))
            for row in rows:
                return self._sender(tuple(row))
        return None

    # -- writing -----------------------------------------------------------------------------

    async def add_suppressions(self, entries: Iterable[SuppressionEntry]) -> int:
        rows = [self._suppression_row(entry) for entry in entries]
        async with self._transaction("add suppressions") as db:
            cursor = await db.executemany(
                f"INSERT OR IGNORE INTO suppressions (list_key, {_SUPPRESSION_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = cursor.rowcount
        return max(added, 0)

    async def add_consents(self, records: Iterable[ConsentRecord]) -> int:
        rows = [self._consent_row(record) for record in records]
        ids = [str(row[0]) for row in rows]
        refuse_repeated_ids(ids)
        async with self._transaction("add consent records") as db:
            present: list[str] = []
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                found = await db.execute_fetchall(
                    "SELECT record_id FROM consents WHERE record_id IN"
                    f" ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                present.extend(str(row[0]) for row in found)
            refuse_stored_ids(present)
            await db.executemany(
                f"INSERT INTO consents ({_CONSENT_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    async def put_senders(self, profiles: Iterable[SenderProfile]) -> int:
        profiles = list({profile.sender_id: profile for profile in profiles}.values())
        async with self._transaction("store sender profiles") as db:
            # Release the names and domains of every profile being replaced first, so that a
            # batch may move a domain from one sender to another.
            await db.executemany(
                "DELETE FROM sender_users WHERE sender_id = ?",
                [(profile.sender_id,) for profile in profiles],
            )
            await db.executemany(
                "DELETE FROM sender_domains WHERE sender_id = ?",
                [(profile.sender_id,) for profile in profiles],
            )
            await db.executemany(
                f"INSERT OR REPLACE INTO senders ({_SENDER_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [self._sender_row(profile) for profile in profiles],
            )
            for profile in profiles:
                await self._claim(db, "sender_users", "user", profile.sender_id, profile.users)
                await self._claim(
                    db,
                    "sender_domains",
                    "domain",
                    profile.sender_id,
                    [_domain_key(domain) for domain in profile.verified_domains],
                )
        return len(profiles)

    async def add_soft_bounce(self, bounce: SoftBounce, since: datetime) -> int:
        key = bytes.fromhex(bounce.address_hash)
        async with self._transaction("keep a soft bounce") as db:
            await db.execute(
                "INSERT OR IGNORE INTO soft_bounces"
                " (address_hash, sender_id, source, at, status, reason) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    bounce.sender_id,
                    bounce.source,
                    _to_text(bounce.at),
                    bounce.status,
                    bounce.reason,
                ),
            )
            ((count,),) = await db.execute_fetchall(
                "SELECT COUNT(*) FROM soft_bounces"
                " WHERE address_hash = ? AND sender_id = ? AND at >= ?",
                (key, bounce.sender_id, _to_text(since)),
            )
        return int(count)

    # -- sender pauses -------------------------------------------------------------------

    async def pause_state(self, sender_id: str) -> PauseChange | None:
        async with store_errors(self.path, "look up a sender pause"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_PAUSE_COLUMNS} FROM sender_pauses WHERE sender_id = ?"
                " ORDER BY seq DESC LIMIT 1",
                (sender_id,),
            )
            for row in rows:
                return self._pause(tuple(row))
        return None

    async def change_pause(self, change: PauseChange) -> PauseChange | None:
        async with self._transaction("pause or resume a sender") as db:
            rows = await db.execute_fetchall(
                "SELECT action FROM sender_pauses WHERE sender_id = ? ORDER BY seq DESC LIMIT 1",
                (change.sender_id,),
            )
            paused = any(row[0] == PauseAction.PAUSE for row in rows)
            if paused == (change.action is PauseAction.PAUSE):
                return None
            cursor = await db.execute(
                "INSERT INTO sender_pauses (sender_id, action, at, reason, source)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    change.sender_id,
                    change.action.value,
                    _to_text(change.at),
                    change.reason,
                    change.source,
                ),
            )
            seq = cursor.lastrowid
        assert seq is not None
        return dataclasses.replace(change, seq=seq)

    async def unrecorded_pause_changes(self) -> list[PauseChange]:
        async with store_errors(self.path, "read unrecorded sender pauses"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_PAUSE_COLUMNS} FROM sender_pauses WHERE audit_ref IS NULL ORDER BY seq"
            )
            return [self._pause(tuple(row)) for row in rows]

    async def pause_changes_recorded(self, audit_refs: Mapping[int, str]) -> None:
        async with self._transaction("mark sender pauses recorded") as db:
            await db.executemany(
                "UPDATE sender_pauses SET audit_ref = ? WHERE seq = ?",
                [(ref, seq) for seq, ref in audit_refs.items()],
            )

    # -- admin API tokens -------------------------------------------------------------------

    async def add_api_token(self, token: ApiToken) -> None:
        async with self._transaction("store an API token") as db:
            rows = await db.execute_fetchall(
                "SELECT token_id, name FROM api_tokens WHERE token_id = ? OR name = ?",
                (token.token_id, token.name),
            )
            for token_id, name in rows:
                taken = f"name {name!r}" if name == token.name else f"id {token_id!r}"
                raise StoreConflict(f"an API token with the {taken} exists already")
            await db.execute(
                f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    token.token_id,
                    token.name,
                    token.role.value,
                    token.secret_hash,
                    _to_text(token.created_at),
                    token.sender_id,
                    _optional_text(token.revoked_at),
                ),
            )

    async def api_token(self, secret_hash: str) -> ApiToken | None:
        async with store_errors(self.path, "look up an API token"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE secret_hash = ?", (secret_hash,)
            )
            for row in rows:
                return self._token(tuple(row))
        return None

    async def api_tokens(self) -> list[ApiToken]:
        async with store_errors(self.path, "list API tokens"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, token_id"
            )
            return [self._token(tuple(row)) for row in rows]

    async def revoke_api_token(self, token_id: str, at: datetime) -> ApiToken | None:
        async with self._transaction("revoke an API token") as db:
            await db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                (_to_text(at), token_id),
            )
            rows = list(
                await db.execute_fetchall(
                    f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE token_id = ?", (token_id,)
                )
            )
        return self._token(tuple(rows[0])) if rows else None

    # -- admin API: suppressions ---------------------------------------------------------------

    async def suppressions_page(
        self, query: SuppressionQuery, after: SuppressionKey | None, limit: int
    ) -> list[SuppressionEntry]:
        conditions: list[str] = []
        values: list[Any] = []
        if query.sender_id is not None:
            conditions.append("sender_id = ?")
            values.append(query.sender_id)
        if query.address_hash is not None:
            conditions.append("address_hash = ?")
            values.append(bytes.fromhex(query.address_hash))
        if query.reason is not None:
            conditions.append("reason = ?")
            values.append(query.reason.value)
        if query.list_id is not None:
            conditions.append("list_id = ?")
            values.append(query.list_id)
        if query.received_since is not None:
            conditions.append("received_at >= ?")
            values.append(_to_text(query.received_since))
        if query.received_until is not None:
            conditions.append("received_at < ?")
            values.append(_to_text(query.received_until))
        if after is not None:
            conditions.append("(sender_id, address_hash, list_key) > (?, ?, ?)")
            values.extend((after.sender_id, bytes.fromhex(after.address_hash), after.list_key))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        async with store_errors(self.path, "list suppressions"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions{where}"
                " ORDER BY sender_id, address_hash, list_key LIMIT ?",
                (*values, limit),
            )
            return [self._suppression(tuple(row)) for row in rows]

    async def suppression_entry(
        self, address_hash: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        async with store_errors(self.path, "look up a suppression"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions"
                " WHERE address_hash = ? AND sender_id = ? AND list_key = ?",
                (bytes.fromhex(address_hash), sender_id, list_id or ""),
            )
            for row in rows:
                return self._suppression(tuple(row))
        return None

    async def remove_suppression(
        self, address_hash: str, sender_id: str, list_id: str | None
    ) -> SuppressionEntry | None:
        key = (bytes.fromhex(address_hash), sender_id, list_id or "")
        async with self._transaction("remove a suppression") as db:
            rows = list(
                await db.execute_fetchall(
                    f"SELECT {_SUPPRESSION_COLUMNS} FROM suppressions"
                    " WHERE address_hash = ? AND sender_id = ? AND list_key = ?",
                    key,
                )
            )
            if not rows:
                return None
            entry = self._suppression(tuple(rows[0]))
            if entry.reason is SuppressionReason.ERASURE:
                raise StoreConflict(
                    "an erasure entry cannot be removed: its keyed hash is what keeps an erased"
                    " address suppressed (EU-ERASURE, PRC-PIPL-DELETE)"
                )
            await db.execute(
                "DELETE FROM suppressions"
                " WHERE address_hash = ? AND sender_id = ? AND list_key = ?",
                key,
            )
        return entry

    # -- admin API: consent, erasure -----------------------------------------------------------

    async def consent_record(self, record_id: str) -> ConsentRecord | None:
        async with store_errors(self.path, "read a consent record"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_CONSENT_COLUMNS} FROM consents WHERE record_id = ?", (record_id,)
            )
            for row in rows:
                return self._consent(tuple(row))
        return None

    async def consents_page(
        self, address_hash: str | None, sender_id: str | None, after: str | None, limit: int
    ) -> list[ConsentRecord]:
        conditions: list[str] = []
        values: list[Any] = []
        if address_hash is not None:
            conditions.append("address_hash = ?")
            values.append(bytes.fromhex(address_hash))
        if sender_id is not None:
            conditions.append("sender_id = ?")
            values.append(sender_id)
        if after is not None:
            conditions.append("record_id > ?")
            values.append(after)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        async with store_errors(self.path, "list consent records"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_CONSENT_COLUMNS} FROM consents{where} ORDER BY record_id LIMIT ?",
                (*values, limit),
            )
            return [self._consent(tuple(row)) for row in rows]

    async def withdraw_consents(
        self, record_ids: Sequence[str], at: datetime
    ) -> list[ConsentRecord]:
        when = _to_text(at)
        changed: list[ConsentRecord] = []
        async with self._transaction("withdraw consent records") as db:
            for start in range(0, len(record_ids), _CHUNK):
                chunk = list(record_ids[start : start + _CHUNK])
                marks = ", ".join("?" * len(chunk))
                open_ = " AND (withdrawn_at IS NULL OR withdrawn_at > ?)"
                rows = await db.execute_fetchall(
                    f"SELECT {_CONSENT_COLUMNS} FROM consents WHERE record_id IN ({marks})"
                    f"{open_} ORDER BY record_id",
                    (*chunk, when),
                )
                changed.extend(
                    dataclasses.replace(self._consent(tuple(row)), withdrawn_at=at) for row in rows
                )
                await db.execute(
                    f"UPDATE consents SET withdrawn_at = ? WHERE record_id IN ({marks}){open_}",
                    (when, *chunk, when),
                )
        return changed

    async def senders_holding(self, address_hash: str) -> list[str]:
        key = bytes.fromhex(address_hash)
        async with store_errors(self.path, "find the senders holding an address"):
            rows = await self._read_db().execute_fetchall(
                "SELECT sender_id FROM suppressions WHERE address_hash = ?"
                " UNION SELECT sender_id FROM consents WHERE address_hash = ?"
                " UNION SELECT sender_id FROM soft_bounces WHERE address_hash = ?"
                " UNION SELECT sender_id FROM subject_requests WHERE address_hash = ?"
                " ORDER BY sender_id",
                (key, key, key, key),
            )
            return [str(row[0]) for row in rows]

    async def erase_address(
        self,
        address_hash: str,
        sender_ids: Sequence[str],
        entries: Iterable[SuppressionEntry],
    ) -> ErasureResult:
        key = bytes.fromhex(address_hash)
        rows = [
            self._suppression_row(dataclasses.replace(entry, address=None)) for entry in entries
        ]
        deleted: list[str] = []
        cleared = bounces = requests = 0
        async with self._transaction("erase an address") as db:
            for sender_id in dict.fromkeys(sender_ids):
                recipient = (key, sender_id)
                found = await db.execute_fetchall(
                    "SELECT record_id FROM consents WHERE address_hash = ? AND sender_id = ?"
                    " ORDER BY record_id",
                    recipient,
                )
                deleted.extend(str(row[0]) for row in found)
                await db.execute(
                    "DELETE FROM consents WHERE address_hash = ? AND sender_id = ?", recipient
                )
                cursor = await db.execute(
                    "UPDATE suppressions SET address = NULL"
                    " WHERE address_hash = ? AND sender_id = ? AND address IS NOT NULL",
                    recipient,
                )
                cleared += max(cursor.rowcount, 0)
                cursor = await db.execute(
                    "DELETE FROM soft_bounces WHERE address_hash = ? AND sender_id = ?", recipient
                )
                bounces += max(cursor.rowcount, 0)
                cursor = await db.execute(
                    "UPDATE subject_requests SET address = NULL"
                    " WHERE address_hash = ? AND sender_id = ? AND address IS NOT NULL",
                    recipient,
                )
                requests += max(cursor.rowcount, 0)
            await db.executemany(
                f"INSERT OR REPLACE INTO suppressions (list_key, {_SUPPRESSION_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        await self._truncate_log()
        return ErasureResult(tuple(deleted), cleared, bounces, requests, len(rows))

    async def _truncate_log(self) -> None:
        """Copy the write-ahead log into the database file and empty it: its older frames
        still hold what was just erased. Readers in the middle of a read make it wait (busy
        timeout); the log then empties at the next checkpoint instead."""
        async with store_errors(self.path, "checkpoint the write-ahead log"), self._write_lock:
            db = self._writer
            if db is None:
                raise StoreUnavailable(f"{self.path}: the stores are not open")
            await db.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")

    # -- admin API: data-subject requests ----------------------------------------------------

    async def add_subject_request(self, request: SubjectRequest) -> None:
        async with self._transaction("store a data-subject request") as db:
            rows = await db.execute_fetchall(
                "SELECT 1 FROM subject_requests WHERE request_id = ?", (request.request_id,)
            )
            if rows:
                raise StoreConflict(f"a request with the id {request.request_id!r} exists already")
            await db.execute(
                f"INSERT INTO subject_requests ({_REQUEST_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.request_id,
                    request.kind.value,
                    bytes.fromhex(request.address_hash),
                    request.sender_id,
                    _to_text(request.received_at),
                    _to_text(request.due_at),
                    _optional_text(request.completed_at),
                    request.note,
                    self._clear(request.address),
                    request.audit_ref,
                ),
            )

    async def subject_request(self, request_id: str) -> SubjectRequest | None:
        async with store_errors(self.path, "read a data-subject request"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_REQUEST_COLUMNS} FROM subject_requests WHERE request_id = ?",
                (request_id,),
            )
            for row in rows:
                return self._request(tuple(row))
        return None

    async def subject_requests_page(
        self,
        open_only: bool,
        sender_id: str | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[SubjectRequest]:
        conditions: list[str] = []
        values: list[Any] = []
        if open_only:
            conditions.append("completed_at IS NULL")
        if sender_id is not None:
            conditions.append("sender_id = ?")
            values.append(sender_id)
        if after is not None:
            conditions.append("(due_at, request_id) > (?, ?)")
            values.extend((_to_text(after[0]), after[1]))
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        async with store_errors(self.path, "list data-subject requests"):
            rows = await self._read_db().execute_fetchall(
                f"SELECT {_REQUEST_COLUMNS} FROM subject_requests{where}"
                " ORDER BY due_at, request_id LIMIT ?",
                (*values, limit),
            )
            return [self._request(tuple(row)) for row in rows]

    async def complete_subject_request(
        self, request_id: str, at: datetime
    ) -> SubjectRequest | None:
        async with self._transaction("complete a data-subject request") as db:
            await db.execute(
                "UPDATE subject_requests SET completed_at = ?"
                " WHERE request_id = ? AND completed_at IS NULL",
                (_to_text(at), request_id),
            )
            rows = list(
                await db.execute_fetchall(
                    f"SELECT {_REQUEST_COLUMNS} FROM subject_requests WHERE request_id = ?",
                    (request_id,),
                )
            )
        return self._request(tuple(rows[0])) if rows else None

    @staticmethod
    def _request(row: tuple[Any, ...]) -> SubjectRequest:
        return SubjectRequest(
            request_id=row[0],
            kind=SubjectRequestKind(row[1]),
            address_hash=bytes(row[2]).hex(),
            sender_id=row[3],
            received_at=_from_text(row[4]),
            due_at=_from_text(row[5]),
            completed_at=_optional_datetime(row[6]),
            note=row[7],
            address=row[8],
            audit_ref=row[9],
        )

    @staticmethod
    def _token(row: tuple[Any, ...]) -> ApiToken:
        return ApiToken(
            token_id=row[0],
            name=row[1],
            role=ApiRole(row[2]),
            secret_hash=row[3],
            created_at=_from_text(row[4]),
            sender_id=row[5],
            revoked_at=_optional_datetime(row[6]),
        )

    @staticmethod
    def _pause(row: tuple[Any, ...]) -> PauseChange:
        return PauseChange(
            sender_id=row[0],
            action=PauseAction(row[1]),
            at=_from_text(row[2]),
            reason=row[3],
            source=row[4],
            seq=int(row[5]),
        )

    async def _claim(
        self,
        db: aiosqlite.Connection,
        table: str,
        column: str,
        sender_id: str,
        values: Sequence[str],
    ) -> None:
        """Map `values` to `sender_id`; a value another sender holds is a conflict."""
        for value in dict.fromkeys(values):
            rows = list(
                await db.execute_fetchall(
                    f"SELECT sender_id FROM {table} WHERE {column} = ?", (value,)
                )
            )
            if rows and rows[0][0] != sender_id:
                raise StoreConflict(
                    f"{column} {value!r} of sender {sender_id!r} already belongs to sender"
                    f" {rows[0][0]!r}"
                )
            await db.execute(
                f"INSERT OR IGNORE INTO {table} ({column}, sender_id) VALUES (?, ?)",
                (value, sender_id),
            )

    # -- rows <-> models ---------------------------------------------------------------------

    def _clear(self, address: str | None) -> str | None:
        return address if self.keep_addresses else None

    def _suppression_row(self, entry: SuppressionEntry) -> tuple[Any, ...]:
        if entry.scope is SuppressionScope.LIST:
            if not entry.list_id:
                raise ValueError("a sender+list suppression needs a list_id")
            list_key = entry.list_id
        else:
            list_key = ""
        return (
            list_key,
            bytes.fromhex(entry.address_hash),
            entry.sender_id,
            entry.scope.value,
            entry.reason.value,
            entry.source,
            _to_text(entry.received_at),
            entry.list_id,
            entry.source_message_id,
            self._clear(entry.address),
            entry.audit_ref,
        )

    @staticmethod
    def _suppression(row: tuple[Any, ...]) -> SuppressionEntry:
        (key, sender_id, scope, reason, source, received_at, list_id, message_id, address, ref) = (
            row
        )
        return SuppressionEntry(
            address_hash=bytes(key).hex(),
            sender_id=sender_id,
            scope=SuppressionScope(scope),
            reason=SuppressionReason(reason),
            source=source,
            received_at=_from_text(received_at),
            list_id=list_id,
            source_message_id=message_id,
            address=address,
            audit_ref=ref,
        )

    def _consent_row(self, record: ConsentRecord) -> tuple[Any, ...]:
        return (
            record.record_id,
            bytes.fromhex(record.address_hash),
            record.sender_id,
            json.dumps(list(record.scope)),
            record.basis.value,
            json.dumps(sorted(record.jurisdictions)),
            _to_text(record.obtained_at),
            record.source,
            record.evidence_ref,
            record.notice_version,
            int(record.affirmative_action),
            int(record.bundled),
            _optional_text(record.expires_at),
            _optional_text(record.withdrawn_at),
            record.product_category,
            self._clear(record.address),
            record.time_zone,
        )

    @staticmethod
    def _consent(row: tuple[Any, ...]) -> ConsentRecord:
        return ConsentRecord(
            record_id=row[0],
            address_hash=bytes(row[1]).hex(),
            sender_id=row[2],
            scope=tuple(json.loads(row[3])),
            basis=ConsentBasis(row[4]),
            jurisdictions=frozenset(json.loads(row[5])),
            obtained_at=_from_text(row[6]),
            source=row[7],
            evidence_ref=row[8],
            notice_version=row[9],
            affirmative_action=bool(row[10]),
            bundled=bool(row[11]),
            expires_at=_optional_datetime(row[12]),
            withdrawn_at=_optional_datetime(row[13]),
            product_category=row[14],
            address=row[15],
            time_zone=row[16],
        )

    @staticmethod
    def _sender_row(profile: SenderProfile) -> tuple[Any, ...]:
        return (
            profile.sender_id,
            profile.legal_name,
            profile.postal_address,
            profile.contact,
            json.dumps(list(profile.verified_domains)),
            profile.default_jurisdiction,
            profile.message_class.value,
            json.dumps(list(profile.users)),
            int(profile.fix_us),
            int(profile.fixes_allowed),
            profile.bounce_domain,
            profile.time_zone,
        )

    @staticmethod
    def _sender(row: tuple[Any, ...]) -> SenderProfile:
        return SenderProfile(
            sender_id=row[0],
            legal_name=row[1],
            postal_address=row[2],
            contact=row[3],
            verified_domains=tuple(json.loads(row[4])),
            default_jurisdiction=row[5],
            message_class=MessageClass(row[6]),
            users=tuple(json.loads(row[7])),
            fix_us=bool(row[8]),
            fixes_allowed=bool(row[9]),
            bounce_domain=row[10],
            time_zone=row[11],
        )


async def _roll_back(db: aiosqlite.Connection) -> None:
    """End a failed transaction (also after a failed COMMIT, which leaves it open) without
    hiding the error that caused it."""
    with contextlib.suppress(sqlite3.Error, ValueError):
        await db.execute("ROLLBACK")
