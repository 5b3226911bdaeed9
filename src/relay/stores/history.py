"""Delivery history: one row per commercial message accepted for one recipient, read by the
cadence rules (frequency caps, duplicate campaigns and content; relay.policy.rules.cadence).

The SQLite backend keeps its own file (`history.sqlite` beside the stores file), not a table of
the stores: every accepted commercial recipient is a write, where the stores are written by
imports and feedback; in one file those would queue behind each other on SQLite's single writer.
The history is also the largest and shortest-lived data relay keeps (rows older than the
longest configured window are pruned), so it is backed up and sized apart.

    deliveries  (address_hash, sender_id, at, queue_id) primary key, WITHOUT ROWID: the rows of
                one recipient and sender are contiguous and in time order, so the RCPT-time
                lookup reads one short range; index (at) for pruning

Times are integer microseconds since the epoch (UTC); addresses and content are keyed hashes.
sqlite3 errors become StoreUnavailable in `store_errors`: the checkpoint answers 451 4.3.0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import aiosqlite

from relay.errors import StoreUnavailable
from relay.group_commit import GroupCommit
from relay.stores.hashing import AddressHasher
from relay.stores.sqlite_base import connect, store_errors

__all__ = ["Delivery", "DeliveryHistory", "SqliteHistory", "from_micros", "to_micros"]

PRUNE_EVERY = timedelta(hours=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    address_hash BLOB NOT NULL,
    sender_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    queue_id TEXT NOT NULL,
    list_id TEXT,
    content_hash BLOB,
    PRIMARY KEY (address_hash, sender_id, at, queue_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (at);
"""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r}: the history keeps timezone-aware datetimes only")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One commercial message accepted (spooled) for one recipient."""

    sender_id: str
    address_hash: str  # HMAC of the recipient, hex (relay.stores.hashing)
    at: datetime
    queue_id: str
    list_id: str | None  # X-Relay-Campaign: the sender's list or campaign
    content_hash: str | None  # of the normalised content, hex (relay.policy.inspect)


class DeliveryHistory(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def recent(self, address: str, sender_id: str, since: datetime) -> list[Delivery]:
        """The deliveries of `sender_id` to `address` at or after `since`, oldest first."""
        ...

    async def record(self, deliveries: Iterable[Delivery]) -> None:
        """Keep `deliveries` in one transaction (all or nothing)."""
        ...

    async def prune(self, before: datetime) -> int:
        """Forget the deliveries before `before`; return how many."""
        ...


class SqliteHistory:
    """DeliveryHistory on one SQLite file (WAL): lookups on one connection, writes on another,
    so that RCPT lookups never wait behind a write. Rows older than `keep` are pruned by
    `record`, at most once per PRUNE_EVERY."""

    def __init__(self, path: Path, hasher: AddressHasher, keep: timedelta) -> None:
        self.path = path
        self.hasher = hasher
        self.keep = keep
        self._reader: aiosqlite.Connection | None = None
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._pruned_at: datetime | None = None
        # Every accepted commercial message records its sends: one transaction for all waiting.
        self._commits: GroupCommit[list[Delivery], None] = GroupCommit(
            self._record_batch, "delivery-history"
        )

    async def open(self) -> None:
        async with store_errors(self.path, "open the delivery history"):
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            try:
                self._writer = await connect(self.path)
                await self._writer.executescript(_SCHEMA)
                self._reader = await connect(self.path)
            except BaseException:
                await self.close()
                raise

    async def close(self) -> None:
        await self._commits.drain()
        for db in (self._reader, self._writer):
            if db is not None:
                with contextlib.suppress(sqlite3.Error, ValueError):  # nothing left to protect
                    await db.close()
        self._reader = self._writer = None

    def _db(self, db: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if db is None:
            raise StoreUnavailable(f"{self.path}: the delivery history is not open")
        return db

    async def recent(self, address: str, sender_id: str, since: datetime) -> list[Delivery]:
        key = self.hasher.digest(address)
        async with store_errors(self.path, "read the delivery history"):
            rows = await self._db(self._reader).execute_fetchall(
                "SELECT at, queue_id, list_id, content_hash FROM deliveries"
                " WHERE address_hash = ? AND sender_id = ? AND at >= ? ORDER BY at",
                (key, sender_id, to_micros(since)),
            )
        return [
            Delivery(
                sender_id,
                key.hex(),
                from_micros(at),
                queue_id,
                list_id,
                None if content is None else bytes(content).hex(),
            )
            for at, queue_id, list_id, content in rows
        ]

    async def record(self, deliveries: Iterable[Delivery]) -> None:
        await self._commits.submit(list(deliveries))

    async def _record_batch(self, batch: list[list[Delivery]]) -> list[Exception | None]:
        """The deliveries of every caller waiting, in one transaction."""
        rows = [
            (
                bytes.fromhex(delivery.address_hash),
                delivery.sender_id,
                to_micros(delivery.at),
                delivery.queue_id,
                delivery.list_id,
                None if delivery.content_hash is None else bytes.fromhex(delivery.content_hash),
            )
            for deliveries in batch
            for delivery in deliveries
        ]
        if not rows:
            return [None] * len(batch)
        now = max(from_micros(row[2]) for row in rows)
        async with self._write("record deliveries") as db:
            await db.executemany(
                "INSERT OR IGNORE INTO deliveries"
                " (address_hash, sender_id, at, queue_id, list_id, content_hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now
            await self.prune(now - self.keep)
        return [None] * len(batch)

    async def prune(self, before: datetime) -> int:
        async with self._write("prune the delivery history") as db:
            cursor = await db.execute("DELETE FROM deliveries WHERE at < ?", (to_micros(before),))
            return max(cursor.rowcount, 0)

    @asynccontextmanager
    async def _write(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        async with store_errors(self.path, doing), self._write_lock:
            db = self._db(self._writer)
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await db.execute("ROLLBACK")
                raise
