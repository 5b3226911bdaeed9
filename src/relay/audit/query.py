"""Finding audit records: the filters of `GET /api/v1/audit/records` and of the report.

A query names what the records must have (a recipient by its keyed hash, a message or queue id,
a rule, a sender, a stage, an action, a time range); `search` reads the log in chain order and
returns a page of them with the cursor to ask for the next one: the seq of the last record of
the page. `report_facts` gathers what the compliance report shows from the records of a period.
Reading is plain file I/O: call these from a worker thread, never from the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from relay.audit.verify import StoredRecord, merged_records, stored_records

__all__ = [
    "MAX_LIMIT",
    "AuditQuery",
    "Honouring",
    "Page",
    "RuleCount",
    "SenderFacts",
    "report_facts",
    "search",
]

MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What a record must have; None matches anything. `since` <= time < `until`."""

    recipient_hash: str | None = None
    message_id: str | None = None
    queue_id: str | None = None
    rule_id: str | None = None
    sender_id: str | None = None
    stage: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether `record`'s fields are those asked for (the time range aside)."""
        return all(
            wanted is None or record.get(name) == wanted
            for name, wanted in (
                ("recipient_hash", self.recipient_hash),
                ("message_id", self.message_id),
                ("queue_id", self.queue_id),
                ("rule_id", self.rule_id),
                ("sender_id", self.sender_id),
                ("stage", self.stage),
                ("action", self.action),
            )
        )

    def records(self, directory: Path) -> Iterator[StoredRecord]:
        """The matching records of the log in `directory`, in chain order, read as they go."""
        return merged_records(directory, self.since, self.until, self.matches)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: int | None  # the seq to pass as `cursor` for the next page; None: no more


def search(directory: Path, query: AuditQuery, limit: int, cursor: int = 0) -> Page:
    """Up to `limit` records matching `query` with seq > `cursor`, in chain order."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be 1..{MAX_LIMIT}, not {limit}")
    items: list[dict[str, Any]] = []
    since = _aware(query.since) if query.since is not None else None
    until = _aware(query.until) if query.until is not None else None
    for stored in stored_records(directory, after_seq=cursor):
        if since is not None and stored.time < since:
            continue
        if until is not None and stored.time >= until:
            continue
        if not query.matches(stored.record):
            continue
        if len(items) == limit:  # one more matches: there is a next page
            return Page(items, int(items[-1]["seq"]))
        items.append(stored.record)
    return Page(items, None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


# -- the compliance report's facts -----------------------------------------------------------

_DECIDING = ("rcpt", "data")
_RULE_ACTIONS = ("reject", "defer", "fix", "warn")


@dataclass(slots=True)
class RuleCount:
    """How often one rule acted one way for one sender."""

    rule_id: str
    action: str
    records: int = 0
    refused: int = 0  # records whose reply refused the recipient
    citation: str | None = None


@dataclass(slots=True)
class Honouring:
    """An unsubscribe request and the first attempt to mail the recipient that was refused."""

    recipient_hash: str
    requested: datetime
    blocked: datetime | None = None
    accepted_between: int = 0  # recipients accepted for the sender in between (other lists?)

    @property
    def delay(self) -> float | None:
        """Seconds from the request to the first refused attempt."""
        return None if self.blocked is None else (self.blocked - self.requested).total_seconds()


@dataclass(slots=True)
class SenderFacts:
    rules: dict[tuple[str, str], RuleCount] = field(default_factory=dict)
    unsubscribes: dict[str, Honouring] = field(default_factory=dict)  # by recipient hash
    days: dict[date, list[int]] = field(default_factory=dict)  # day -> [accepted, refused]


def report_facts(records: Iterable[StoredRecord]) -> dict[str, SenderFacts]:
    """Per sender, from the audit records (in chain order) of a period: the rules that acted
    (counts and citations), each unsubscribe request with the first refused attempt to mail
    the recipient after it, and the recipients accepted and refused by a rule each day."""
    facts: dict[str, SenderFacts] = {}
    for stored in records:
        record = stored.record
        sender = record.get("sender_id")
        if not isinstance(sender, str):
            continue
        mine = facts.setdefault(sender, SenderFacts())
        stage, action = record.get("stage"), record.get("action")
        rule_id, reply = record.get("rule_id"), record.get("reply")
        recipient = str(record.get("recipient_hash") or "")
        if isinstance(rule_id, str) and action in _RULE_ACTIONS:
            count = mine.rules.setdefault((rule_id, action), RuleCount(rule_id, action))
            count.records += 1
            count.refused += reply is not None
            count.citation = count.citation or record.get("citation")
        if stage not in _DECIDING and stage != "unsubscribe":
            continue
        day = mine.days.setdefault(stored.time.date(), [0, 0])
        if stage == "data" and action == "accept":
            day[0] += 1
        elif reply is not None and rule_id is not None:
            day[1] += 1
        if stage == "unsubscribe" and action == "suppress" and recipient:
            if recipient not in mine.unsubscribes:
                mine.unsubscribes[recipient] = Honouring(recipient, stored.time)
            continue
        honouring = mine.unsubscribes.get(recipient)
        if honouring is None or honouring.blocked is not None:
            continue
        if action == "reject":
            honouring.blocked = stored.time
        elif stage == "data" and action == "accept":
            honouring.accepted_between += 1
    return facts
