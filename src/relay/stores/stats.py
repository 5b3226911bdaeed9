"""List-health figures: what happened to the mail of each sender and campaign, counted per UTC
hour, read back over rolling windows (`relay stats`, MBP-COMPLAINT-RATE).

What is counted, per recipient (only mail of a sender profile; relay's own DSNs are not):

    accepted      spooled after the end-of-data decision (ingest)
    delivered     the destination answered 250 (queue manager)
    hard_bounce   delivery refused permanently (5xx, or a domain that cannot receive mail), or
                  a hard bounce arriving later at the recipient's VERP return path
    soft_bounce   a delivery attempt a receiving server answered with 4xx (every such attempt,
                  the one before expiry included; attempts that found no server are relay's or
                  the network's problem, not the list's), or a soft bounce arriving at a VERP
                  return path
    deferred      a delivery attempt that failed for now, whatever the cause (4xx, no server
                  answering, a TLS requirement not met), the recipient staying queued
    complaint     a complaint report of a `[feedback] complaint_types` type
    unsubscribe   a one-click or mailto unsubscribe that added a suppression (a repeated
                  request for the same recipient and list counts once)
    refused       a recipient refused or deferred by a policy rule (`rule_id` names it); at RCPT
                  the campaign is not known yet, so those count under campaign ''

The destination is the recipient's domain. Delivery outcomes (relay.feedback.delivery) name it:
they are counted per sender and destination too, to tell a list's problem from one mailbox
provider's. A tally without one counts only per campaign.

The campaign is the message's X-Relay-Campaign ('' when none). Feedback arriving later names
only a queue id (VERP), so the campaign of each accepted message that has one is kept beside the
counts for CAMPAIGN_MEMORY; feedback about an older or unknown message counts under ''.

Rates: bounces over accepted recipients (the mailer's "sent"); complaints and unsubscribes over
delivered recipients, as mailbox providers compute the complaint rate. A rate without anything
to divide by is None.

The SQLite tables live in the stores file (WAL, so `relay stats` can read them while `relay
serve` writes):

    list_stats         (sender_id, hour, campaign, kind, rule_id) primary key; hour is
                       'YYYY-MM-DDTHH' (UTC), rule_id '' except for refusals
    destination_stats  (sender_id, hour, destination, kind, rule_id) primary key: the tallies
                       that name a destination, again
    campaign_messages  queue_id primary key -> campaign, and when it was accepted
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import aiosqlite

from relay.errors import StoreUnavailable
from relay.group_commit import GroupCommit
from relay.stores.models import ComplaintRate
from relay.stores.sqlite_base import connect, store_errors

__all__ = [
    "BOUNCE_WARN",
    "CAMPAIGN_MEMORY",
    "COMPLAINT_PAUSE",
    "COMPLAINT_WARN",
    "ComplaintLevel",
    "Figures",
    "Kind",
    "ListStats",
    "SqliteStats",
    "Tally",
    "destination_of",
    "tally",
]

log = logging.getLogger("relay.stores")

CAMPAIGN_MEMORY = timedelta(days=30)  # the longest window `relay stats` shows
# MBP-COMPLAINT-RATE (COMPLIANCE §7): Gmail's 0.1 % target, and 0.3 % where Gmail and Yahoo
# stop delivering; relay's marketing stream pauses there.
COMPLAINT_WARN = 0.001
COMPLAINT_PAUSE = 0.003
# Hard bounces over accepted recipients: no mailbox provider publishes a threshold; 2 % is the
# usual ESP guidance, and a high unknown-user ratio is what US-HARVEST looks for.
BOUNCE_WARN = 0.02


class Kind(StrEnum):
    ACCEPTED = "accepted"
    DELIVERED = "delivered"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    REFUSED = "refused"
    DEFERRED = "deferred"


class ComplaintLevel(StrEnum):
    """Where a complaint rate stands against the mailbox providers' thresholds."""

    WARN = "warn"  # >= COMPLAINT_WARN
    PAUSE = "pause"  # >= COMPLAINT_PAUSE


@dataclass(frozen=True, slots=True)
class Tally:
    """`count` events of one kind for one sender and campaign ('' for none), and for one
    destination (the recipients' domain) when it names one."""

    sender_id: str
    campaign: str
    kind: Kind
    count: int = 1
    rule_id: str = ""
    destination: str = ""


@dataclass(frozen=True, slots=True)
class Figures:
    """The counts of one sender (and campaign) over a window, and the rates made from them."""

    accepted: int = 0
    delivered: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    refusals: Mapping[str, int] = field(default_factory=dict)  # rule id -> recipients
    deferred: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.accepted + other.accepted,
            self.delivered + other.delivered,
            self.hard_bounces + other.hard_bounces,
            self.soft_bounces + other.soft_bounces,
            self.complaints + other.complaints,
            self.unsubscribes + other.unsubscribes,
            dict(Counter(self.refusals) + Counter(other.refusals)),
            self.deferred + other.deferred,
        )

    @property
    def refused(self) -> int:
        return sum(self.refusals.values())

    @property
    def hard_bounce_rate(self) -> float | None:
        return _rate(self.hard_bounces, self.accepted)

    @property
    def soft_bounce_rate(self) -> float | None:
        return _rate(self.soft_bounces, self.accepted)

    @property
    def complaint_rate(self) -> float | None:
        return _rate(self.complaints, self.delivered)

    @property
    def unsubscribe_rate(self) -> float | None:
        return _rate(self.unsubscribes, self.delivered)

    @property
    def complaint_level(self) -> ComplaintLevel | None:
        rate = self.complaint_rate
        if rate is None or rate < COMPLAINT_WARN:
            return None
        return ComplaintLevel.PAUSE if rate >= COMPLAINT_PAUSE else ComplaintLevel.WARN


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class ListStats(Protocol):
    """Where the figures are counted; backend-neutral like the other stores."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(
        self, at: datetime, tallies: Iterable[Tally], messages: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Add `tallies` to the hour of `at`, and remember the campaign of each message in
        `messages` ((queue id, campaign) of messages just accepted), in one transaction."""
        ...

    async def campaign_of(self, queue_id: str) -> str:
        """The campaign of an accepted message, '' when it had none or is not remembered."""
        ...

    async def figures(
        self,
        window: timedelta,
        now: datetime,
        *,
        sender_id: str | None = None,
        campaign: str | None = None,
    ) -> dict[tuple[str, str], Figures]:
        """The figures per (sender, campaign) in the `window` before `now` (in whole hours: the
        hour of `now` and the ones before it), of one sender and/or campaign when given."""
        ...

    async def destinations(
        self, window: timedelta, now: datetime, *, sender_id: str | None = None
    ) -> dict[tuple[str, str], Figures]:
        """The figures per (sender, destination) in the `window` before `now` (as `figures`),
        of the tallies that named a destination, of one sender when given."""
        ...

    async def complaint_rate(
        self, sender_id: str, window: timedelta, now: datetime
    ) -> ComplaintRate:
        """Complaints and delivered recipients of `sender_id`, every campaign, in `window`."""
        ...


def destination_of(address: str) -> str:
    """The destination a recipient is counted under: its domain, lower case (IDNs as given:
    the figures only group by it)."""
    return address.rpartition("@")[2].lower()


async def tally(
    stats: ListStats,
    at: datetime,
    tallies: Sequence[Tally],
    messages: Sequence[tuple[str, str]] = (),
) -> None:
    """Add `tallies`, logging instead of raising when the store cannot be written: the figures
    must never hold up mail or the feedback that suppresses."""
    if not tallies and not messages:
        return
    try:
        await stats.add(at, tallies, messages)
    except StoreUnavailable as exc:
        log.error("list-health figures not counted (%s): %s", _summary(tallies), exc)


def _summary(tallies: Sequence[Tally]) -> str:
    return ", ".join(f"{t.sender_id}/{t.campaign or '-'} {t.kind}+{t.count}" for t in tallies)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS list_stats (
    sender_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    campaign TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (sender_id, hour, campaign, kind, rule_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS list_stats_by_campaign ON list_stats (campaign, hour);
CREATE TABLE IF NOT EXISTS campaign_messages (
    queue_id TEXT PRIMARY KEY,
    campaign TEXT NOT NULL,
    at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS campaign_messages_by_time ON campaign_messages (at);
CREATE TABLE IF NOT EXISTS destination_stats (
    sender_id TEXT NOT NULL,
    hour TEXT NOT NULL,
    destination TEXT NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (sender_id, hour, destination, kind, rule_id)
) WITHOUT ROWID;
"""

_COUNTS = {
    Kind.ACCEPTED: "accepted",
    Kind.DELIVERED: "delivered",
    Kind.HARD_BOUNCE: "hard_bounces",
    Kind.SOFT_BOUNCE: "soft_bounces",
    Kind.COMPLAINT: "complaints",
    Kind.UNSUBSCRIBE: "unsubscribes",
    Kind.DEFERRED: "deferred",
}


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


_Addition = tuple[datetime, list[Tally], list[tuple[str, str]]]


class SqliteStats:
    """ListStats in a SQLite file (the stores file); one connection, one operation at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # Each submission and each delivery adds figures: one transaction for all waiting.
        self._commits: GroupCommit[_Addition, None] = GroupCommit(
            self._add_batch, "list-health-figures"
        )

    async def open(self) -> None:
        async with store_errors(self.path, "open the list-health figures"):
            await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
            db = await connect(self.path)
            try:
                await db.executescript(_SCHEMA)
            except BaseException:
                await db.close()
                raise
            self._db = db

    async def close(self) -> None:
        await self._commits.drain()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error, ValueError):  # nothing left to protect
                await self._db.close()
        self._db = None

    async def __aenter__(self) -> SqliteStats:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _connection(self, doing: str) -> AsyncIterator[aiosqlite.Connection]:
        async with store_errors(self.path, doing), self._lock:
            if self._db is None:
                raise StoreUnavailable(f"{self.path}: the list-health figures are not open")
            yield self._db

    async def add(
        self, at: datetime, tallies: Iterable[Tally], messages: Iterable[tuple[str, str]] = ()
    ) -> None:
        await self._commits.submit((at, list(tallies), list(messages)))

    async def _add_batch(self, batch: list[_Addition]) -> list[Exception | None]:
        """Every addition waiting, in one transaction."""
        rows, by_destination, remembered = [], [], []
        for at, tallies, messages in batch:
            hour = _hour(at)
            for t in tallies:
                rows.append((t.sender_id, hour, t.campaign, t.kind.value, t.rule_id, t.count))
                if t.destination:
                    by_destination.append(
                        (t.sender_id, hour, t.destination, t.kind.value, t.rule_id, t.count)
                    )
            remembered += [(queue_id, campaign, at.isoformat()) for queue_id, campaign in messages]
        latest = max(at for at, _, _ in batch)
        async with self._connection("count list-health figures") as db:
            await db.execute("BEGIN IMMEDIATE")
            try:
                await db.executemany(
                    "INSERT INTO list_stats (sender_id, hour, campaign, kind, rule_id, count)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                    " count = count + excluded.count",
                    rows,
                )
                if by_destination:
                    await db.executemany(
                        "INSERT INTO destination_stats"
                        " (sender_id, hour, destination, kind, rule_id, count)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                        " count = count + excluded.count",
                        by_destination,
                    )
                if remembered:
                    await db.executemany(
                        "INSERT OR REPLACE INTO campaign_messages (queue_id, campaign, at)"
                        " VALUES (?, ?, ?)",
                        remembered,
                    )
                    await db.execute(
                        "DELETE FROM campaign_messages WHERE at < ?",
                        ((latest - CAMPAIGN_MEMORY).isoformat(),),
                    )
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error, ValueError):
                    await db.execute("ROLLBACK")
                raise
        return [None] * len(batch)

    async def campaign_of(self, queue_id: str) -> str:
        async with self._connection("look up a message's campaign") as db:
            rows = await db.execute_fetchall(
                "SELECT campaign FROM campaign_messages WHERE queue_id = ?", (queue_id,)
            )
        return next((str(row[0]) for row in rows), "")

    async def figures(
        self,
        window: timedelta,
        now: datetime,
        *,
        sender_id: str | None = None,
        campaign: str | None = None,
    ) -> dict[tuple[str, str], Figures]:
        return await self._read(
            "list_stats", "campaign", window, now, sender_id=sender_id, other=campaign
        )

    async def destinations(
        self, window: timedelta, now: datetime, *, sender_id: str | None = None
    ) -> dict[tuple[str, str], Figures]:
        return await self._read("destination_stats", "destination", window, now, sender_id)

    async def _read(
        self,
        table: str,
        column: str,
        window: timedelta,
        now: datetime,
        sender_id: str | None = None,
        other: str | None = None,
    ) -> dict[tuple[str, str], Figures]:
        """Figures per (sender, `column`) of `table`; `table` and `column` are ours, never
        a client's."""
        query = (
            f"SELECT sender_id, {column}, kind, rule_id, SUM(count) FROM {table}"
            " WHERE hour BETWEEN ? AND ?"
        )
        parameters: list[str] = [_hour(now - window + timedelta(hours=1)), _hour(now)]
        for name, value in (("sender_id", sender_id), (column, other)):
            if value is not None:
                query += f" AND {name} = ?"
                parameters.append(value)
        query += f" GROUP BY sender_id, {column}, kind, rule_id"
        async with self._connection("read list-health figures") as db:
            rows = await db.execute_fetchall(query, parameters)
        counts: dict[tuple[str, str], dict[str, int]] = {}
        refusals: dict[tuple[str, str], dict[str, int]] = {}
        for sender, key_value, kind, rule_id, total in rows:
            key = (str(sender), str(key_value))
            counts.setdefault(key, {})
            refusals.setdefault(key, {})
            if kind == Kind.REFUSED:
                refusals[key][str(rule_id)] = int(total)
            elif kind in _COUNTS:
                counts[key][_COUNTS[Kind(kind)]] = int(total)
        return {
            key: Figures(**counts[key], refusals=dict(sorted(refusals[key].items())))
            for key in sorted(counts)
        }

    async def complaint_rate(
        self, sender_id: str, window: timedelta, now: datetime
    ) -> ComplaintRate:
        every = sum((await self.figures(window, now, sender_id=sender_id)).values(), Figures())
        return ComplaintRate(every.complaints, every.delivered, every.complaint_rate)
