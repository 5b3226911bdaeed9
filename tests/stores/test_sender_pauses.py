"""Sender pauses in the stores (both backends): the journal's latest change is the state, a
change that changes nothing is not journalled, journalled changes wait for the audit log; and the
automatic pause from the complaint figures (relay.policy.standing) with its audit record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from relay.audit.records import AuditEvent
from relay.policy.standing import Standings, is_paused, record_changes
from relay.stores.base import Stores
from relay.stores.models import PauseAction, PauseChange
from relay.stores.stats import Kind, Tally
from tests.stores.helpers import WHEN, run_stores


class Audit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append(self, events: Sequence[AuditEvent]) -> Sequence[str]:
        self.events.extend(events)
        return [f"ref-{len(self.events) - len(events) + i}" for i in range(len(events))]


def change(action: PauseAction, at: datetime = WHEN, reason: str = "spam traps") -> PauseChange:
    return PauseChange("acme", action, at, reason, "operator")


def test_pause_and_resume_are_journalled_and_survive_reopen(place):
    db = place

    async def pause(stores: Stores):
        first = await stores.change_pause(change(PauseAction.PAUSE))
        again = await stores.change_pause(change(PauseAction.PAUSE, reason="twice"))
        return first, again, await is_paused(stores, "acme"), await is_paused(stores, "other")

    first, again, paused, other = run_stores(db, pause)
    assert first is not None
    assert first.seq > 0
    assert again is None
    assert (paused, other) == (True, False)
    assert run_stores(db, lambda stores: stores.pause_state("acme")) == first

    async def resume(stores: Stores):
        resumed = await stores.change_pause(change(PauseAction.RESUME, WHEN + timedelta(hours=1)))
        extra = await stores.change_pause(change(PauseAction.RESUME))
        return resumed, extra, await is_paused(stores, "acme")

    resumed, extra, paused = run_stores(db, resume)
    assert resumed is not None
    assert resumed.seq > first.seq
    assert extra is None
    assert paused is False


def test_journalled_changes_are_written_to_the_audit_log_once(place):
    audit = Audit()

    async def run(stores: Stores):
        await stores.change_pause(change(PauseAction.PAUSE))
        await stores.change_pause(change(PauseAction.RESUME))
        first = await record_changes(stores, audit)
        return first, await record_changes(stores, audit), await stores.unrecorded_pause_changes()

    assert run_stores(place, run) == (2, 0, [])
    assert [(e.stage, e.action, e.sender_id, e.detail) for e in audit.events] == [
        ("sender", "pause", "acme", "spam traps"),
        ("sender", "resume", "acme", "spam traps"),
    ]


def standings(stores: Stores, audit: Audit) -> Standings:
    return Standings(stores, audit, [timedelta(days=1)], 0.003, 1000, "MBP-COMPLAINT-RATE")


async def figures(stores: Stores, at: datetime, complaints: int, delivered: int) -> None:
    await stores.stats.add(
        at,
        [
            Tally("acme", "", Kind.COMPLAINT, complaints),
            Tally("acme", "", Kind.DELIVERED, delivered),
        ],
    )


def test_the_complaint_rate_pauses_a_sender_once_enough_was_delivered(place):
    audit = Audit()

    async def run(stores: Stores):
        now = datetime.now(UTC)
        await figures(stores, now, 2, 500)  # 0.4 % of too few
        few = await standings(stores, audit).of("acme")
        await figures(stores, now, 2, 500)  # 0.4 % of 1000
        many = await standings(stores, audit).of("acme")
        return few, many

    few, many = run_stores(place, run)
    assert few.pause is None
    assert few.rates[0][1].delivered == 500
    assert many.pause is not None
    assert many.pause.source == "MBP-COMPLAINT-RATE"
    assert "0.40%" in many.pause.reason
    (event,) = audit.events
    assert (event.stage, event.action, event.rule_id) == ("sender", "pause", "MBP-COMPLAINT-RATE")


def test_after_a_resume_only_later_hours_count(place):
    audit = Audit()

    async def run(stores: Stores):
        now = datetime.now(UTC)
        await figures(stores, now - timedelta(hours=3), 10, 1000)
        found = standings(stores, audit)
        paused = await found.of("acme")
        await stores.change_pause(change(PauseAction.RESUME, now))
        resumed = await found.of("acme")
        return paused, resumed

    paused, resumed = run_stores(place, run)
    assert paused.pause is not None
    assert resumed.pause is None
    assert resumed.rates[0][1].delivered == 0


def test_rates_are_cached_between_lookups(place):
    async def run(stores: Stores):
        found = standings(stores, Audit())
        before = await found.of("acme")
        await figures(stores, datetime.now(UTC), 10, 1000)
        return before, await found.of("acme")

    before, cached = run_stores(place, run)
    assert before == cached
    assert cached.pause is None
