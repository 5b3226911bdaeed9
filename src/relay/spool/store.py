"""The durable message store.

Layout under the spool directory:

    tmp/<queue-id>      being written; never answered 250; removed at start-up
    queue/<queue-id>    accepted: one line of envelope JSON, then the message bytes
    bad/<queue-id>      queue files that cannot be read back (set aside for an operator)
    index.sqlite        per-recipient delivery state (WAL)

A message is accepted when its queue file has been written, fsync'd, renamed into queue/ and the
directory fsync'd: the file alone proves acceptance, so a crash between that and the index insert
loses nothing (start-up indexes queue files the index does not know). Recipient states live in
SQLite; a committed update survives `kill -9`.

An operator (admin API) may hold a message: the flag lives in the index, so start-up does not
schedule a held message; may end its queued recipients as bounced or deleted (`end`); and may
list and inspect what is queued (`messages`, `message`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from relay.durable import write_durably
from relay.errors import SpoolError
from relay.spool.records import (
    DeliveryResult,
    Envelope,
    MessageSummary,
    Outcome,
    PendingRecipient,
    RecipientState,
    RecipientStatus,
)

__all__ = [
    "HeldRecipient",
    "QueuedGroup",
    "Spool",
    "SpoolCounts",
    "held_recipients",
    "new_queue_id",
]

log = logging.getLogger("relay.spool")

T = TypeVar("T")

_MAGIC = b"RELAY1 "

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    queue_id TEXT PRIMARY KEY,
    mail_from TEXT NOT NULL,
    received_at REAL NOT NULL,
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS recipients (
    queue_id TEXT NOT NULL REFERENCES messages(queue_id),
    address TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status TEXT,
    diagnostic TEXT,
    remote_mta TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (queue_id, address)
);
CREATE INDEX IF NOT EXISTS recipients_by_state ON recipients(state, next_attempt_at);
-- The queued recipients by message, for listing what is queued: small (a recipient leaves it
-- when it ends), while the table keeps every final recipient.
CREATE INDEX IF NOT EXISTS recipients_queued ON recipients(queue_id) WHERE state = 'queued';
"""
# Columns added since the first release, for the scheduler to rebuild its jobs at start-up
# without reading every queue file; rows written before them read as commercial-class mail of
# the envelope sender's domain.
_ADDED_COLUMNS = (
    ("messages", "sender_id", "TEXT"),
    ("messages", "message_class", "TEXT"),
    ("messages", "verp", "INTEGER NOT NULL DEFAULT 0"),
    # Held by an operator (admin API): not scheduled, at start-up either, until released.
    ("messages", "operator_hold", "INTEGER NOT NULL DEFAULT 0"),
)
_QUEUED = RecipientState.QUEUED.value
_PAGE_MAX = 1000


def new_queue_id() -> str:
    """A unique, time-ordered id: microseconds since the epoch and 32 random bits, in hex.
    Queue ids need uniqueness, not secrecy, so the cheap generator will do."""
    return f"{time.time_ns() // 1000:014X}{random.getrandbits(32):08X}"


class Spool:
    """Queue files on disk plus a SQLite index of recipient states. Use from one event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp_dir = path / "tmp"
        self.queue_dir = path / "queue"
        self.bad_dir = path / "bad"
        self._index_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-index")
        self._db: sqlite3.Connection | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the directories, open the index and index queue files it does not know."""
        try:
            for directory in (self.tmp_dir, self.queue_dir, self.bad_dir):
                directory.mkdir(parents=True, exist_ok=True)
            await self._in_index_thread(self._open_index)
            for leftover in self.tmp_dir.iterdir():
                leftover.unlink()
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool at {self.path}: {exc}") from exc
        await self._recover()

    async def close(self) -> None:
        if self._db is not None:
            await self._in_index_thread(self._db.close)
            self._db = None
        self._index_thread.shutdown(wait=True)

    def _open_index(self) -> None:
        db = sqlite3.connect(self.path / "index.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        for table, column, declaration in _ADDED_COLUMNS:
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._db = db

    async def _recover(self) -> None:
        """Index queue files the index does not know (a crash before the insert) and remove
        those whose recipients are all final (a crash before the unlink)."""
        queued_counts = await self._in_index_thread(self._queued_counts)
        for queue_file in sorted(self.queue_dir.iterdir()):
            queued = queued_counts.get(queue_file.name)
            if queued == 0:
                log.info("%s: all recipients final; removing its queue file", queue_file.name)
                queue_file.unlink()
                continue
            if queued is not None:
                continue
            try:
                envelope, content = await asyncio.to_thread(self._read, queue_file)
            except SpoolError as exc:
                self._set_aside(queue_file, str(exc))
                continue
            log.info("%s: recovered from the queue directory", envelope.queue_id)
            await self._in_index_thread(self._insert, envelope, len(content))

    def _queued_counts(self) -> dict[str, int]:
        """Every indexed message with the number of its recipients still queued."""
        assert self._db is not None
        rows = self._db.execute(
            "SELECT queue_id, SUM(state = ?) FROM recipients GROUP BY queue_id",
            (RecipientState.QUEUED.value,),
        )
        return {queue_id: int(queued) for queue_id, queued in rows}

    # -- accepting --------------------------------------------------------------------------

    async def accept(self, envelope: Envelope, content: bytes) -> None:
        """Store the message durably; when this returns, a 250 may be sent."""
        await asyncio.to_thread(self._write, envelope, content)
        try:
            await self._in_index_thread(self._insert, envelope, len(content))
        except sqlite3.Error as exc:
            # The queue file is durable; start-up will index it. Refuse the message anyway so
            # that a broken index is noticed rather than filling silently.
            (self.queue_dir / envelope.queue_id).unlink(missing_ok=True)
            raise SpoolError(f"{envelope.queue_id}: cannot index the message: {exc}") from exc

    def _write(self, envelope: Envelope, content: bytes) -> None:
        try:
            write_durably(
                self.tmp_dir / envelope.queue_id,
                self.queue_dir / envelope.queue_id,
                (_MAGIC + envelope.to_json() + b"\n", content),
            )
        except OSError as exc:
            raise SpoolError(f"{envelope.queue_id}: cannot write the queue file: {exc}") from exc

    def _insert(self, envelope: Envelope, size: int) -> None:
        assert self._db is not None
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR IGNORE INTO messages (queue_id, mail_from, received_at, size,"
                " sender_id, message_class, verp) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    envelope.queue_id,
                    envelope.mail_from,
                    envelope.received_at,
                    size,
                    envelope.sender_id,
                    envelope.message_class,
                    envelope.verp_domain is not None,
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO recipients (queue_id, address, state, next_attempt_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        envelope.queue_id,
                        rcpt,
                        RecipientState.QUEUED.value,
                        envelope.not_before.get(rcpt, now),
                        now,
                    )
                    for rcpt in envelope.recipients
                ],
            )

    # -- reading ----------------------------------------------------------------------------

    async def load(self, queue_id: str) -> tuple[Envelope, bytes]:
        return await asyncio.to_thread(self._read, self.queue_dir / queue_id)

    @staticmethod
    def _read(queue_file: Path) -> tuple[Envelope, bytes]:
        try:
            data = queue_file.read_bytes()
        except OSError as exc:
            raise SpoolError(f"{queue_file.name}: cannot read the queue file: {exc}") from exc
        header, newline, content = data.partition(b"\n")
        if not header.startswith(_MAGIC) or not newline:
            raise SpoolError(f"{queue_file.name}: not a relay queue file")
        try:
            return Envelope.from_json(header[len(_MAGIC) :]), content
        except (ValueError, TypeError, KeyError) as exc:
            raise SpoolError(f"{queue_file.name}: unreadable envelope: {exc}") from exc

    async def queued(self, queue_id: str | None = None) -> list[QueuedGroup]:
        """Every message's queued recipients, grouped by domain: what start-up schedules;
        messages held by an operator are left out. With `queue_id`: that message's, held or
        not (its release schedules them)."""
        return await self._in_index_thread(self._queued, queue_id)

    def _queued(self, queue_id: str | None) -> list[QueuedGroup]:
        assert self._db is not None
        select = (
            "SELECT r.queue_id, r.address, r.next_attempt_at, m.mail_from, m.sender_id,"
            " m.message_class, m.verp FROM recipients r JOIN messages m USING (queue_id)"
        )
        if queue_id is None:
            rows = self._db.execute(
                select
                # `+`: scan the table in order rather than look every row up through the state
                # index; at start-up most rows are queued, and the scan is four times faster.
                + " WHERE +r.state = ? AND NOT m.operator_hold",
                (_QUEUED,),
            )
        else:
            rows = self._db.execute(
                select + " WHERE r.queue_id = ? AND r.state = ?", (queue_id, _QUEUED)
            )
        groups: dict[tuple[str, str], QueuedGroup] = {}
        for queue_id, address, due_at, mail_from, sender_id, message_class, verp in rows:
            domain = address.rpartition("@")[2].lower()
            group = groups.get((queue_id, domain))
            if group is None:
                groups[queue_id, domain] = QueuedGroup(
                    queue_id, domain, 1, due_at, mail_from, sender_id, message_class, bool(verp)
                )
            else:
                group.recipients += 1
                group.due_at = min(group.due_at, due_at)
        return list(groups.values())

    async def pending(self, queue_id: str) -> list[PendingRecipient]:
        """The message's recipients that are still queued."""
        return await self._in_index_thread(self._pending, queue_id)

    def _pending(self, queue_id: str) -> list[PendingRecipient]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT address, attempts, next_attempt_at FROM recipients"
            " WHERE queue_id = ? AND state = ? ORDER BY rowid",
            (queue_id, RecipientState.QUEUED.value),
        )
        return [PendingRecipient(*row) for row in rows]

    # -- recording outcomes -----------------------------------------------------------------

    async def record(
        self,
        queue_id: str,
        outcomes: Iterable[Outcome],
    ) -> int:
        """Record (recipient, new state, result, next attempt time) for several recipients in
        one transaction; a final state is never changed again. Return how many recipients of
        the message are still queued."""
        return await self._in_index_thread(self._record, queue_id, list(outcomes))

    def _record(self, queue_id: str, outcomes: list[Outcome]) -> int:
        assert self._db is not None
        now = time.time()
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE recipients SET state = ?, attempts = attempts + 1, next_attempt_at = ?,"
                " status = ?, diagnostic = ?, remote_mta = ?, updated_at = ?"
                " WHERE queue_id = ? AND address = ? AND state = ?",
                [
                    (
                        state.value,
                        next_attempt_at,
                        result.status,
                        result.diagnostic,
                        result.remote_mta,
                        now,
                        queue_id,
                        address,
                        RecipientState.QUEUED.value,
                    )
                    for address, state, result, next_attempt_at in outcomes
                ],
            )
            (remaining,) = self._db.execute(
                "SELECT COUNT(*) FROM recipients WHERE queue_id = ? AND state = ?",
                (queue_id, RecipientState.QUEUED.value),
            ).fetchone()
        return int(remaining)

    # -- operators (admin API) --------------------------------------------------------------

    async def hold(self, queue_id: str, held: bool) -> bool:
        """Set or clear a message's operator hold; True when that changed it."""
        return await self._in_index_thread(self._hold, queue_id, held)

    def _hold(self, queue_id: str, held: bool) -> bool:
        assert self._db is not None
        with self._db:
            changed = self._db.execute(
                "UPDATE messages SET operator_hold = ? WHERE queue_id = ? AND operator_hold != ?",
                (held, queue_id, held),
            ).rowcount
        return changed > 0

    async def due_now(self, queue_id: str, now: float) -> None:
        """Make the message's queued recipients due at `now` (an operator's release), except
        those whose first attempt waits for a send-time window: that is policy."""
        await self._in_index_thread(self._due_now, queue_id, now)

    def _due_now(self, queue_id: str, now: float) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute(
                "UPDATE recipients SET next_attempt_at = ? WHERE queue_id = ? AND state = ?"
                " AND next_attempt_at > ? AND attempts > 0",
                (now, queue_id, _QUEUED, now),
            )

    async def end(
        self,
        queue_id: str,
        addresses: Iterable[str],
        state: RecipientState,
        result: DeliveryResult,
    ) -> list[str]:
        """End those of `addresses` that are still queued in the final `state` (an operator's
        bounce or delete: not an attempt, so `attempts` stays); return the ones it ended."""
        assert state.final
        return await self._in_index_thread(self._end, queue_id, list(addresses), state, result)

    def _end(
        self, queue_id: str, addresses: list[str], state: RecipientState, result: DeliveryResult
    ) -> list[str]:
        assert self._db is not None
        now = time.time()
        ended: list[str] = []
        with self._db:
            self._db.execute("BEGIN")
            for address in addresses:
                row = self._db.execute(
                    "UPDATE recipients SET state = ?, next_attempt_at = ?, status = ?,"
                    " diagnostic = ?, remote_mta = ?, updated_at = ?"
                    " WHERE queue_id = ? AND address = ? AND state = ? RETURNING address",
                    (
                        state.value,
                        now,
                        result.status,
                        result.diagnostic,
                        result.remote_mta,
                        now,
                        queue_id,
                        address,
                        _QUEUED,
                    ),
                ).fetchone()
                if row is not None:
                    ended.append(row[0])
        return ended

    async def messages(
        self,
        *,
        after: str = "",
        limit: int = 100,
        sender_id: str | None = None,
        domain: str | None = None,
        held: bool | None = None,
    ) -> list[MessageSummary]:
        """Messages with queued recipients, by queue id (time order) from after `after`: those
        of `sender_id`, with queued recipients at `domain`, held or not by an operator."""
        return await self._in_index_thread(
            self._messages, after, min(limit, _PAGE_MAX), sender_id, domain, held
        )

    def _messages(
        self,
        after: str,
        limit: int,
        sender_id: str | None,
        domain: str | None,
        held: bool | None,
    ) -> list[MessageSummary]:
        assert self._db is not None
        # `state = 'queued'` written out: the partial index recipients_queued serves it.
        queued = "SELECT queue_id FROM recipients WHERE state = 'queued' AND queue_id > :after"
        if domain is not None:
            queued += " AND lower(substr(address, -length(:at_domain))) = :at_domain"
        conditions = [f"m.queue_id IN ({queued})"]
        if sender_id is not None:
            conditions.append("m.sender_id = :sender_id")
        if held is not None:
            conditions.append("m.operator_hold = :held")
        rows = self._db.execute(
            f"SELECT {_SUMMARY} FROM messages m WHERE {' AND '.join(conditions)}"
            " ORDER BY m.queue_id LIMIT :limit",
            {
                "after": after,
                "at_domain": f"@{(domain or '').lower()}",
                "sender_id": sender_id,
                "held": held,
                "limit": limit,
            },
        )
        return [_summary(row) for row in rows]

    async def message(self, queue_id: str) -> tuple[MessageSummary, list[RecipientStatus]] | None:
        """A message the index knows, queued or ended, with each recipient's state."""
        return await self._in_index_thread(self._message, queue_id)

    def _message(self, queue_id: str) -> tuple[MessageSummary, list[RecipientStatus]] | None:
        assert self._db is not None
        row = self._db.execute(
            f"SELECT {_SUMMARY} FROM messages m WHERE m.queue_id = ?", (queue_id,)
        ).fetchone()
        if row is None:
            return None
        rows = self._db.execute(
            "SELECT address, state, attempts, next_attempt_at, status, diagnostic, remote_mta,"
            " updated_at FROM recipients WHERE queue_id = ? ORDER BY rowid",
            (queue_id,),
        )
        recipients = [
            RecipientStatus(
                address,
                RecipientState(state),
                attempts,
                due if state == _QUEUED else None,
                status,
                diagnostic,
                remote_mta,
                updated_at,
            )
            for address, state, attempts, due, status, diagnostic, remote_mta, updated_at in rows
        ]
        return _summary(row), recipients

    async def counts(self) -> SpoolCounts:
        """How many messages and recipients are queued, and how many messages are held."""
        return await self._in_index_thread(self._counts)

    def _counts(self) -> SpoolCounts:
        assert self._db is not None
        messages, recipients = self._db.execute(
            "SELECT COUNT(DISTINCT queue_id), COUNT(*) FROM recipients WHERE state = 'queued'"
        ).fetchone()
        (held,) = self._db.execute(
            "SELECT COUNT(*) FROM messages m WHERE m.operator_hold AND EXISTS"
            " (SELECT 1 FROM recipients r WHERE r.queue_id = m.queue_id AND r.state = 'queued')"
        ).fetchone()
        return SpoolCounts(int(messages), int(recipients), int(held))

    async def remove(self, queue_id: str) -> None:
        """Delete the queue file of a message whose recipients are all final."""
        await asyncio.to_thread((self.queue_dir / queue_id).unlink, missing_ok=True)

    async def withdraw(self, queue_id: str) -> None:
        """Take back a message that was spooled but not acknowledged (another copy of its
        transaction could not be written): its queue file and its index rows."""
        await self.remove(queue_id)
        await self._in_index_thread(self._forget, queue_id)

    def _forget(self, queue_id: str) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM recipients WHERE queue_id = ?", (queue_id,))
            self._db.execute("DELETE FROM messages WHERE queue_id = ?", (queue_id,))

    def _set_aside(self, queue_file: Path, reason: str) -> None:
        log.error(
            "%s: %s; moved to %s for an operator to inspect", queue_file.name, reason, self.bad_dir
        )
        os.replace(queue_file, self.bad_dir / queue_file.name)

    async def set_aside(self, queue_id: str, reason: str) -> None:
        """Move a queue file that cannot be read back out of the way (a poison message) and end
        its recipients as bounced: without the envelope there is nobody to notify."""
        queue_file = self.queue_dir / queue_id
        if queue_file.exists():
            await asyncio.to_thread(self._set_aside, queue_file, reason)
        failure = DeliveryResult("5.3.0", f"queue file unusable: {reason}")
        outcomes = [
            (recipient.address, RecipientState.BOUNCED, failure, time.time())
            for recipient in await self.pending(queue_id)
        ]
        await self.record(queue_id, outcomes)

    async def _in_index_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._index_thread, function, *args)


_SUMMARY = (
    "m.queue_id, m.mail_from, m.sender_id, m.message_class, m.received_at, m.size,"
    " m.operator_hold,"
    " (SELECT COUNT(*) FROM recipients r WHERE r.queue_id = m.queue_id),"
    " (SELECT COUNT(*) FROM recipients r WHERE r.queue_id = m.queue_id AND r.state = 'queued'),"
    " (SELECT MIN(next_attempt_at) FROM recipients r"
    "  WHERE r.queue_id = m.queue_id AND r.state = 'queued')"
)


def _summary(row: tuple[Any, ...]) -> MessageSummary:
    queue_id, mail_from, sender_id, message_class, received_at, size, held, *counts = row
    recipients, queued, next_attempt_at = counts
    return MessageSummary(
        queue_id,
        mail_from,
        sender_id,
        message_class,
        received_at,
        size,
        bool(held),
        int(recipients),
        int(queued),
        next_attempt_at,
    )


@dataclass(frozen=True, slots=True)
class SpoolCounts:
    messages: int  # with queued recipients
    recipients: int  # queued
    held: int  # messages with queued recipients held by an operator


@dataclass(slots=True)
class QueuedGroup:
    """The queued recipients of one message at one domain, as the index knows them."""

    queue_id: str
    domain: str
    recipients: int
    due_at: float  # the earliest next attempt among them
    mail_from: str
    sender_id: str | None
    message_class: str | None
    verp: bool


@dataclass(frozen=True, slots=True)
class HeldRecipient:
    envelope: Envelope
    address: str
    release_at: float  # its first delivery attempt (epoch seconds)


def held_recipients(path: Path, now: float) -> list[HeldRecipient]:
    """Recipients not yet tried whose first attempt is after `now`: mail held for a send-time
    window. Only reads the spool at `path`, so it is safe beside a running relay."""
    index = path / "index.sqlite"
    if not index.exists():
        return []
    try:
        db = sqlite3.connect(f"{index.as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT queue_id, address, next_attempt_at FROM recipients"
                " WHERE state = ? AND attempts = 0 AND next_attempt_at > ?",
                (RecipientState.QUEUED.value, now),
            ).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise SpoolError(f"cannot read the spool index {index}: {exc}") from exc
    envelopes: dict[str, Envelope] = {}
    held: list[HeldRecipient] = []
    for queue_id, address, release_at in rows:
        if queue_id not in envelopes:
            try:
                envelopes[queue_id], _ = Spool._read(path / "queue" / queue_id)
            except SpoolError:
                continue  # delivered and removed since the query, or set aside
        held.append(HeldRecipient(envelopes[queue_id], address, release_at))
    return held
