"""A sender's standing: whether its commercial stream is paused, and its complaint rates
(Fact.SENDER_STANDING, read by MBP-COMPLAINT-RATE).

A pause is set by an operator (`relay senders pause`) or by the complaint rate: when, over one
of the rule's windows, a sender with at least `min_delivered` delivered recipients has a
complaint rate at or above `pause_at`, the checkpoint journals an automatic pause. A pause lasts
until an operator resumes the sender; after a resume only the figures of the hours after the
resume's hour count, so a sender is not paused again at once for the complaints that paused it.

Every pause and resume is journalled in the stores and written to the audit log (stage
"sender", action "pause"/"resume") by the process that holds the log: `relay serve` writes what
`relay senders` journalled while it ran (at the next MAIL of any sender), `relay senders` writes
it itself when no relay holds the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from relay import __version__
from relay.audit.records import AuditEvent
from relay.errors import AuditError
from relay.stores.base import Stores
from relay.stores.models import ComplaintRate, PauseAction, PauseChange

__all__ = ["RATE_TTL", "AuditSink", "SenderStanding", "Standings", "is_paused", "record_changes"]

log = logging.getLogger("relay.policy")

RATE_TTL = 60.0  # seconds a sender's complaint rates are reused between RCPTs
_HOUR = timedelta(hours=1)


class AuditSink(Protocol):
    """What the audit log offers here (relay.audit.log.AuditLog)."""

    async def append(self, events: Sequence[AuditEvent]) -> Sequence[str]: ...


Rates = tuple[tuple[timedelta, ComplaintRate], ...]  # (window, rate) per window


@dataclass(frozen=True, slots=True)
class SenderStanding:
    pause: PauseChange | None  # the pause in force, if any
    rates: Rates = ()  # per window; () while paused


async def is_paused(stores: Stores, sender_id: str) -> bool:
    """Whether `sender_id`'s commercial stream is paused now (the queue manager's question)."""
    state = await stores.pause_state(sender_id)
    return state is not None and state.action is PauseAction.PAUSE


def pause_event(change: PauseChange) -> AuditEvent:
    return AuditEvent(
        time=change.at.isoformat(),
        stage="sender",
        action=change.action.value,
        mail_from="",
        recipient_hash="",
        rule_id=None if change.source == "operator" else change.source,
        detail=change.reason,
        inputs={"source": change.source, "journal_seq": change.seq},
        sender_id=change.sender_id,
        relay_version=__version__,
    )


async def record_changes(stores: Stores, audit: AuditSink) -> int:
    """Write the journalled pauses and resumes not yet in the audit log; return how many."""
    changes = await stores.unrecorded_pause_changes()
    if not changes:
        return 0
    refs = await audit.append([pause_event(change) for change in changes])
    await stores.pause_changes_recorded(
        {change.seq: ref for change, ref in zip(changes, refs, strict=True)}
    )
    return len(changes)


class Standings:
    """Gathers SenderStanding at MAIL: the pause (one point query), the complaint rates
    (cached RATE_TTL per sender), an automatic pause when a rate passes `pause_at`."""

    def __init__(
        self,
        stores: Stores,
        audit: AuditSink,
        windows: Sequence[timedelta],
        pause_at: float,
        min_delivered: int,
        rule_id: str,
    ) -> None:
        self._stores = stores
        self._audit = audit
        self._windows = tuple(windows)
        self._pause_at = pause_at
        self._min_delivered = min_delivered
        self._rule_id = rule_id
        # (sender, seq of its latest change) -> (expires at, rates)
        self._rates: dict[tuple[str, int], tuple[float, Rates]] = {}

    async def of(self, sender_id: str) -> SenderStanding:
        """Raises StoreUnavailable when the stores cannot answer."""
        await self._record()
        state = await self._stores.pause_state(sender_id)
        if state is not None and state.action is PauseAction.PAUSE:
            return SenderStanding(state)
        now = datetime.now(UTC)
        rates = await self._rates_of(sender_id, state, now)
        tripped = [
            (window, rate)
            for window, rate in rates
            if rate.delivered >= self._min_delivered
            and rate.rate is not None
            and rate.rate >= self._pause_at
        ]
        if not tripped:
            return SenderStanding(None, rates)
        window, rate = tripped[0]
        assert rate.rate is not None
        reason = (
            f"complaint rate {rate.rate:.2%} over {_days(window)} ({rate.complaints} complaints,"
            f" {rate.delivered} delivered) at or above {self._pause_at:.1%}"
        )
        pause = PauseChange(sender_id, PauseAction.PAUSE, now, reason, self._rule_id)
        stored = await self._stores.change_pause(pause)
        log.warning("sender %s paused: %s", sender_id, reason)
        await self._record()
        return SenderStanding(stored or await self._stores.pause_state(sender_id), rates)

    async def _rates_of(self, sender_id: str, state: PauseChange | None, now: datetime) -> Rates:
        key = (sender_id, state.seq if state else 0)
        cached = self._rates.get(key)
        clock = time.monotonic()
        if cached is not None and cached[0] > clock:
            return cached[1]
        rates: list[tuple[timedelta, ComplaintRate]] = []
        for window in self._windows:
            counted = window
            if state is not None:  # a resume: only the hours after its hour count
                counted = min(window, _hours_between(state.at, now))
            if counted > timedelta(0):
                rate = await self._stores.stats.complaint_rate(sender_id, counted, now)
            else:
                rate = ComplaintRate(0, 0, None)
            rates.append((window, rate))
        if len(self._rates) > 10_000:
            self._rates = {k: v for k, v in self._rates.items() if v[0] > clock}
        self._rates[key] = (clock + RATE_TTL, tuple(rates))
        return tuple(rates)

    async def _record(self) -> None:
        """Write journalled changes to the audit log; a failure is retried at the next MAIL."""
        try:
            await record_changes(self._stores, self._audit)
        except AuditError as exc:
            log.error("sender pauses not yet in the audit log: %s", exc)


def _hours_between(earlier: datetime, later: datetime) -> timedelta:
    """Whole UTC hours after the hour of `earlier` up to and including the hour of `later`."""
    start = earlier.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = later.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return max(end - start, timedelta(0))


def _days(window: timedelta) -> str:
    return f"{window.days}d" if window % timedelta(days=1) == timedelta(0) else str(window)
