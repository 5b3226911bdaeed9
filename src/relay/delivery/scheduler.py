"""The delivery scheduler: when each job is due, which destination it waits at, and which job a
destination takes next.

A job is one message's recipients at one domain. It sleeps in a heap until due, then waits in
its destination's queue. A destination hands out a job when it is not suspended, has a
connection to spare and its rates allow one more message; it takes transactional mail (and
relay's own DSNs) before anything else, and within each class goes round the senders, so one
sender's campaign queues behind itself, not in front of another's password resets. A sender may
also be paused at one destination (a provider's block) and have limits of its own there.

Every operation costs O(log n) in the number of queued jobs (heaps and deques, never a scan of
the queue); choosing a sender walks the senders waiting at one destination.

An operator's hold cancels a message's jobs without looking for them: each job carries the
generation of its message when it was made, `cancel` moves the message to its next generation,
and a job of an older one is dropped wherever it turns up (due, placed, taken or added back).
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import deque
from dataclasses import dataclass, field
from itertools import count

from relay.config.types import Rate
from relay.delivery.backoff import Pace
from relay.delivery.budget import LocalBudget, RateBudget
from relay.delivery.shaping import Limits

__all__ = ["DestinationState", "Job", "Lane", "Scheduler"]

_sequence = count()


class Job:
    """One message's recipients at one domain; ordered by due time, then by age."""

    __slots__ = (
        "cost",
        "domain",
        "due_at",
        "generation",
        "queue_id",
        "sender",
        "seq",
        "transactional",
    )

    def __init__(
        self,
        queue_id: str,
        domain: str,
        sender: str,
        *,
        transactional: bool,
        cost: int,
        due_at: float,
        generation: int = 0,
    ) -> None:
        self.queue_id = queue_id
        # Interned: a million queued jobs share a few thousand domains and senders, and each
        # job's would otherwise be a string of its own (parsed from its address or row).
        self.domain = sys.intern(domain)
        self.sender = sys.intern(sender)  # sender profile id, else the envelope sender's domain
        self.transactional = transactional
        self.cost = cost  # SMTP transactions it takes (one per recipient under VERP)
        self.due_at = due_at
        self.generation = generation  # Scheduler.generation(queue_id) when it was made
        self.seq = next(_sequence)

    def __lt__(self, other: Job) -> bool:
        # The heap's one comparison, O(log n) times per operation: no tuples.
        if self.due_at != other.due_at:
            return self.due_at < other.due_at
        return self.seq < other.seq

    def __repr__(self) -> str:
        return f"Job({self.queue_id}, {self.domain}, due {self.due_at:.0f})"


def _scaled(rates: tuple[Rate, ...], pace: Pace) -> list[tuple[int, int]]:
    return [(pace.scaled(rate.amount), rate.period) for rate in rates]


@dataclass(eq=False, slots=True)
class Lane:
    """A destination: its limits, its pace, its connections in use and its waiting jobs."""

    name: str
    limits: Limits
    pace: Pace = field(default_factory=Pace)
    active: int = 0
    active_by_sender: dict[str, int] = field(default_factory=dict)
    paused_senders: dict[str, float] = field(default_factory=dict)  # sender -> until
    # Transactional, then everything else: sender -> its jobs, in round-robin order.
    queues: tuple[dict[str, deque[Job]], dict[str, deque[Job]]] = field(
        default_factory=lambda: ({}, {})
    )
    queued: int = 0
    listed: bool = False  # in the scheduler's ready list
    wake_at: float = math.inf  # a timer of the scheduler will look again then

    @property
    def max_connections(self) -> int:
        return self.pace.scaled(self.limits.max_connections)

    def rates(self) -> list[tuple[int, int]]:
        return _scaled(self.limits.rates, self.pace)

    def sender_rates(self) -> list[tuple[int, int]]:
        return _scaled(self.limits.sender_rates, self.pace)

    @property
    def sender_connections(self) -> int | None:
        """Connections one sender may use at once, at the current pace; None: no own cap."""
        cap = self.limits.sender_connections
        return None if cap is None else self.pace.scaled(cap)

    def sender_full(self, sender: str) -> bool:
        cap = self.sender_connections
        return cap is not None and self.active_by_sender.get(sender, 0) >= cap


@dataclass(frozen=True, slots=True)
class DestinationState:
    """What a destination is doing now (the admin API's view of a lane)."""

    name: str
    waiting: int  # due jobs waiting for a connection or their rate
    active: int  # jobs being attempted (connections in use)
    limits: Limits  # as configured
    max_connections: int  # at the current pace
    rates: tuple[tuple[int, int], ...]  # (amount, period) at the current pace
    pace: float  # factor of the configured limits, 1.0 at full pace
    suspended_until: float | None  # epoch seconds; None when not suspended
    paused_senders: dict[str, float]  # sender -> until (epoch seconds)


class Scheduler:
    def __init__(self, budget: RateBudget | None = None) -> None:
        self.budget: RateBudget = budget or LocalBudget()
        self.lanes: dict[str, Lane] = {}
        self._timers: list[Job] = []  # jobs not yet due
        self._lane_timers: list[tuple[float, int, Lane]] = []
        self._ready: deque[Lane] = deque()
        # Messages whose jobs were cancelled (held by an operator): queue id -> generation.
        # Few (operators' actions), so kept for the life of the process.
        self._generations: dict[str, int] = {}

    def __len__(self) -> int:
        """Jobs sleeping until due (the rest wait at their destinations or are running)."""
        return len(self._timers)

    # -- jobs -------------------------------------------------------------------------------

    def add(self, job: Job) -> None:
        if self.current(job):
            heapq.heappush(self._timers, job)

    def pop_due(self, now: float) -> list[Job]:
        due: list[Job] = []
        while self._timers and self._timers[0].due_at <= now:
            job = heapq.heappop(self._timers)
            if self.current(job):
                due.append(job)
        return due

    def generation(self, queue_id: str) -> int:
        """The generation a new job of the message gets."""
        return self._generations.get(queue_id, 0)

    def current(self, job: Job) -> bool:
        """Whether the job is still wanted (its message was not held since it was made)."""
        return job.generation == self._generations.get(job.queue_id, 0)

    def cancel(self, queue_id: str) -> None:
        """Drop every job of the message, wherever it is; one being attempted finishes, and
        is not added back."""
        self._generations[queue_id] = self._generations.get(queue_id, 0) + 1

    def lane(self, name: str, limits: Limits) -> Lane:
        lane = self.lanes.get(name)
        if lane is None:
            lane = self.lanes[name] = Lane(name, limits)
        return lane

    def place(self, job: Job, lane: Lane) -> None:
        """A due job waits at its destination."""
        if not self.current(job):
            return
        queue = lane.queues[0 if job.transactional else 1]
        jobs = queue.get(job.sender)
        if jobs is None:
            jobs = queue[job.sender] = deque()
        jobs.append(job)
        lane.queued += 1
        self._list(lane)

    async def release(self, lane: Lane, job: Job) -> None:
        """A job's attempt is over (reschedule it with add() if recipients remain)."""
        lane.active -= 1
        left = lane.active_by_sender[job.sender] - 1
        if left:
            lane.active_by_sender[job.sender] = left
        else:
            del lane.active_by_sender[job.sender]
        self._list(lane)
        await self.budget.release(job.seq)

    async def tend(self, now: float) -> None:
        """Upkeep of every few seconds: the budget's (idle windows, slots kept alive), then
        destinations with nothing queued or running and nothing to remember (full pace, no
        suspension or sender pause in force) are dropped, so a long run does not keep every
        domain."""
        await self.budget.tend(now)
        for name, lane in list(self.lanes.items()):
            lane.paused_senders = {
                sender: until for sender, until in lane.paused_senders.items() if until > now
            }
            if (
                not lane.queued
                and not lane.active
                and lane.pace.factor >= 1.0
                and lane.pace.suspended_until <= now
                and not lane.paused_senders
            ):
                del self.lanes[name]

    def wake(self, lane: Lane) -> None:
        """Look at the destination again (its pace or pauses changed)."""
        self._list(lane)

    def destinations(self, now: float) -> list[DestinationState]:
        """Every destination known now, by name."""
        return [
            DestinationState(
                name=lane.name,
                waiting=lane.queued,
                active=lane.active,
                limits=lane.limits,
                max_connections=lane.max_connections,
                rates=tuple(lane.rates()),
                pace=lane.pace.factor,
                suspended_until=(
                    lane.pace.suspended_until if lane.pace.suspended_until > now else None
                ),
                paused_senders={
                    sender: until for sender, until in lane.paused_senders.items() if until > now
                },
            )
            for lane in sorted(self.lanes.values(), key=lambda lane: lane.name)
        ]

    # -- choosing the next job --------------------------------------------------------------

    def next_wake(self) -> float | None:
        times = [self._timers[0].due_at] if self._timers else []
        if self._lane_timers:
            times.append(self._lane_timers[0][0])
        return min(times, default=None)

    async def take(self, now: float) -> tuple[Job, Lane] | None:
        """The next job to attempt now, counted as running at its destination; None when no
        destination can take one before something changes."""
        while self._lane_timers and self._lane_timers[0][0] <= now:
            _, _, lane = heapq.heappop(self._lane_timers)
            if lane.wake_at <= now:
                lane.wake_at = math.inf
                self._list(lane)
        while self._ready:
            lane = self._ready.popleft()
            lane.listed = False
            job = await self._take_from(lane, now)
            if job is not None:
                self._list(lane)
                return job, lane
        return None

    async def _take_from(self, lane: Lane, now: float) -> Job | None:
        if not lane.queued or lane.active >= lane.max_connections:
            return None  # a release lists it again
        if lane.pace.suspended_until > now:
            self._wake_later(lane, lane.pace.suspended_until)
            return None
        lane_rates = lane.rates()
        at = await self.budget.available_at(lane.name, lane_rates, 1, now)
        if at > now:
            self._wake_later(lane, at)
            return None
        sender_rates = lane.sender_rates()
        lane_slot = (lane.name, lane.max_connections)
        sender_cap = lane.sender_connections
        wake = math.inf
        for queue in lane.queues:
            for sender, jobs in list(queue.items()):
                while jobs and not self.current(jobs[0]):
                    jobs.popleft()  # cancelled: its message is held
                    lane.queued -= 1
                if not jobs:
                    del queue[sender]
                    continue
                paused_until = lane.paused_senders.get(sender, 0.0)
                if paused_until > now:
                    wake = min(wake, paused_until)
                    continue
                if lane.sender_full(sender):
                    continue
                sender_key = f"{lane.name}/{sender}"
                slots = [lane_slot] if sender_cap is None else [lane_slot, (sender_key, sender_cap)]
                at = await self.budget.acquire(
                    [(lane.name, lane_rates), (sender_key, sender_rates)],
                    jobs[0].cost,
                    now,
                    slots,
                    jobs[0].seq,
                )
                if at > now:
                    wake = min(wake, at)
                    continue
                job = jobs.popleft()
                del queue[sender]
                if jobs:
                    queue[sender] = jobs  # to the back of the round
                lane.queued -= 1
                lane.active += 1
                lane.active_by_sender[sender] = lane.active_by_sender.get(sender, 0) + 1
                return job
        if wake < math.inf:
            self._wake_later(lane, wake)
        return None

    def _list(self, lane: Lane) -> None:
        if not lane.listed and lane.queued:
            lane.listed = True
            self._ready.append(lane)

    def _wake_later(self, lane: Lane, at: float) -> None:
        if at < lane.wake_at:
            lane.wake_at = at
            heapq.heappush(self._lane_timers, (at, next(_sequence), lane))
