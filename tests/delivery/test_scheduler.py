"""The delivery scheduler on its own (relay.delivery.scheduler): due order, transactional mail
first, round robin between senders, connection caps (per destination and per sender), sender
pauses, rate limits, a cut pace and a suspension. In-process and without a network, on the
in-process budget (tests/delivery/test_shared_budget.py has the shared one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from relay.config.types import Rate
from relay.delivery.scheduler import Job, Lane, Scheduler
from relay.delivery.shaping import Limits

NOW = 1_000_000.0
T = TypeVar("T")


def limits(
    max_connections: int = 100,
    *,
    rates: tuple[Rate, ...] = (),
    sender_connections: int | None = None,
    sender_rates: tuple[Rate, ...] = (),
) -> Limits:
    return Limits(
        max_connections=max_connections,
        messages_per_connection=100,
        rates=rates,
        connect_timeout=30.0,
        command_timeout=300.0,
        sender_connections=sender_connections,
        sender_rates=sender_rates,
    )


def job(
    queue_id: str,
    *,
    sender: str = "bulk.example",
    transactional: bool = False,
    due_at: float = NOW,
    domain: str = "dest.test",
) -> Job:
    return Job(queue_id, domain, sender, transactional=transactional, cost=1, due_at=due_at)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def take_all(scheduler: Scheduler, now: float, *, release: bool) -> list[Job]:
    """Take jobs until the scheduler has none to give now, releasing each at once if asked."""
    taken: list[Job] = []
    while (item := await scheduler.take(now)) is not None:
        taken.append(item[0])
        if release:
            await scheduler.release(item[1], item[0])
    return taken


def test_jobs_come_due_in_order_of_due_time_then_age() -> None:
    scheduler = Scheduler()
    jobs = [
        job("late", due_at=NOW + 50),
        job("first", due_at=NOW + 10),
        job("tie-older", due_at=NOW + 20),
        job("tie-newer", due_at=NOW + 20),
        job("now", due_at=NOW),
    ]
    for each in jobs:
        scheduler.add(each)
    assert len(scheduler) == 5
    assert scheduler.next_wake() == NOW

    assert [j.queue_id for j in scheduler.pop_due(NOW - 1)] == []
    assert [j.queue_id for j in scheduler.pop_due(NOW + 20)] == [
        "now",
        "first",
        "tie-older",
        "tie-newer",
    ]
    assert scheduler.next_wake() == NOW + 50
    assert [j.queue_id for j in scheduler.pop_due(NOW + 100)] == ["late"]
    assert len(scheduler) == 0
    assert scheduler.next_wake() is None


def test_a_transactional_job_placed_after_50_bulk_jobs_is_taken_first() -> None:
    async def scenario() -> list[Job]:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits(max_connections=1))
        for n in range(50):
            scheduler.place(job(f"bulk-{n}"), lane)
        scheduler.place(job("reset", sender="shop.example", transactional=True), lane)
        return await take_all(scheduler, NOW, release=True)

    taken = run(scenario())
    assert taken[0].queue_id == "reset"
    assert [j.queue_id for j in taken[1:]] == [f"bulk-{n}" for n in range(50)]


def test_senders_of_one_class_take_turns() -> None:
    async def scenario() -> list[Job]:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits())
        for n in range(20):
            scheduler.place(job(f"a-{n}", sender="a.example"), lane)
        for n in range(5):
            scheduler.place(job(f"b-{n}", sender="b.example"), lane)
        return await take_all(scheduler, NOW, release=True)

    order = [j.queue_id for j in run(scenario())]
    assert order[:10] == [x for n in range(5) for x in (f"a-{n}", f"b-{n}")]
    assert order[10:] == [f"a-{n}" for n in range(5, 20)]


def test_max_connections_caps_running_jobs_until_one_is_released() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits(max_connections=2))
        for n in range(5):
            scheduler.place(job(f"j-{n}"), lane)
        running = await take_all(scheduler, NOW, release=False)
        assert [j.queue_id for j in running] == ["j-0", "j-1"]
        assert lane.active == 2
        assert await scheduler.take(NOW) is None
        assert scheduler.next_wake() is None  # only a release can free a slot

        await scheduler.release(lane, running[0])
        item = await scheduler.take(NOW)
        assert item is not None
        assert item[0].queue_id == "j-2"
        assert await scheduler.take(NOW) is None

    run(scenario())


def test_max_connections_is_per_destination() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        one = scheduler.lane("one.test", limits(max_connections=1))
        other = scheduler.lane("other.test", limits(max_connections=1))
        for n in range(3):
            scheduler.place(job(f"one-{n}", domain="one.test"), one)
            scheduler.place(job(f"other-{n}", domain="other.test"), other)
        running = await take_all(scheduler, NOW, release=False)
        assert sorted(j.queue_id for j in running) == ["one-0", "other-0"]

    run(scenario())


def test_a_sender_at_its_own_connection_cap_is_skipped_not_the_others() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits(max_connections=10, sender_connections=1))
        for n in range(3):
            scheduler.place(job(f"a-{n}", sender="a.example"), lane)
        for n in range(3):
            scheduler.place(job(f"b-{n}", sender="b.example"), lane)
        running = await take_all(scheduler, NOW, release=False)
        assert [j.queue_id for j in running] == ["a-0", "b-0"]
        assert lane.active_by_sender == {"a.example": 1, "b.example": 1}

        await scheduler.release(lane, running[0])
        item = await scheduler.take(NOW)
        assert item is not None
        assert item[0].queue_id == "a-1"
        assert await scheduler.take(NOW) is None

    run(scenario())


def test_a_paused_sender_waits_until_the_pause_ends_and_the_others_go_on() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits())
        lane.paused_senders["a.example"] = NOW + 30
        for n in range(3):
            scheduler.place(job(f"a-{n}", sender="a.example"), lane)
        for n in range(3):
            scheduler.place(job(f"b-{n}", sender="b.example"), lane)
        taken = await take_all(scheduler, NOW, release=True)
        assert [j.queue_id for j in taken] == ["b-0", "b-1", "b-2"]
        assert lane.queued == 3
        assert scheduler.next_wake() == NOW + 30

        assert await scheduler.take(NOW + 29.9) is None
        taken = await take_all(scheduler, NOW + 30, release=True)
        assert [j.queue_id for j in taken] == ["a-0", "a-1", "a-2"]
        assert scheduler.next_wake() is None

    run(scenario())


def test_a_lane_rate_lets_its_amount_through_then_wakes_when_the_window_moves() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits(rates=(Rate(3, 1),)))
        for n in range(5):
            scheduler.place(job(f"j-{n}"), lane)
        start = time.time()
        taken = await take_all(scheduler, start, release=True)
        assert [j.queue_id for j in taken] == ["j-0", "j-1", "j-2"]
        assert await scheduler.take(time.time()) is None
        wake = scheduler.next_wake()
        assert wake is not None
        assert wake - start == pytest.approx(1.0, abs=0.2)

        await asyncio.sleep(max(0.0, wake - time.time()) + 0.02)
        taken = await take_all(scheduler, time.time(), release=True)
        assert [j.queue_id for j in taken] == ["j-3", "j-4"]

    run(scenario())


def test_a_sender_rate_holds_that_sender_only() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits(sender_rates=(Rate(2, 60),)))
        for n in range(4):
            scheduler.place(job(f"a-{n}", sender="a.example"), lane)
            scheduler.place(job(f"b-{n}", sender="b.example"), lane)
        now = time.time()
        taken = await take_all(scheduler, now, release=True)
        assert sorted(j.queue_id for j in taken) == ["a-0", "a-1", "b-0", "b-1"]
        wake = scheduler.next_wake()
        assert wake is not None
        assert wake - now == pytest.approx(60.0, abs=1.0)

    run(scenario())


def test_a_cut_pace_halves_max_connections() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits(max_connections=4))
        lane.pace.factor = 0.5
        assert lane.max_connections == 2
        for n in range(6):
            scheduler.place(job(f"j-{n}"), lane)
        running = await take_all(scheduler, NOW, release=False)
        assert len(running) == 2

        lane.pace.factor = 1.0  # recovered: the destination is looked at again
        scheduler.wake(lane)
        running += await take_all(scheduler, NOW, release=False)
        assert len(running) == 4

    run(scenario())


def test_a_suspended_lane_takes_nothing_until_the_suspension_ends() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane = scheduler.lane("dest.test", limits())
        other = scheduler.lane("other.test", limits())
        lane.pace.suspend(NOW + 60)
        scheduler.place(job("held"), lane)
        scheduler.place(job("elsewhere", domain="other.test"), other)
        taken = await take_all(scheduler, NOW, release=True)
        assert [j.queue_id for j in taken] == ["elsewhere"]
        assert scheduler.next_wake() == NOW + 60
        assert await scheduler.take(NOW + 59) is None
        taken = await take_all(scheduler, NOW + 60, release=True)
        assert [j.queue_id for j in taken] == ["held"]

    run(scenario())


def test_a_lane_released_while_suspended_still_waits_for_the_end() -> None:
    async def scenario() -> None:
        scheduler = Scheduler()
        lane: Lane = scheduler.lane("dest.test", limits())
        scheduler.place(job("first"), lane)
        scheduler.place(job("second"), lane)
        item = await scheduler.take(NOW)
        assert item is not None
        lane.pace.suspend(NOW + 60)  # the first attempt's reply suspended the destination
        taken_job, taken_lane = item
        await scheduler.release(taken_lane, taken_job)
        assert await scheduler.take(NOW + 1) is None
        assert scheduler.next_wake() == NOW + 60
        item = await scheduler.take(NOW + 60)
        assert item is not None
        assert item[0].queue_id == "second"

    run(scenario())
