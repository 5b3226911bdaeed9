"""The queue manager: turns spooled messages into jobs (one message's recipients at one domain),
runs the jobs the scheduler hands out, records one outcome per recipient and schedules the retry,
bounce or expiry.

Recipient outcomes (DESIGN §3): success -> delivered; 5xx or permanent DNS failure -> bounced
with a DSN; 4xx or no connection -> retried on [delivery] retry_schedule (with jitter) until
max_lifetime, then expired with a DSN. A DSN is queued like any other message, from the null
reverse path, and goes ahead of bulk mail.

Destinations (relay.delivery.shaping) limit connections, messages per connection and rates; the
replies of each attempt (relay.delivery.backoff) slow a destination down, suspend it, or pause
one sender there, and sustained success restores its pace. Every change is logged.

Commercial (and mixed) mail of a paused sender (relay.policy.standing) is not attempted: it is
looked at again every PAUSE_RECHECK seconds, its attempts and retry schedule untouched, so the
pause costs it no attempt; its max_lifetime runs on, but it expires only after a failed attempt
past it, so mail that waited out a long pause still gets one attempt after the resume.

An operator (admin API) may hold a message (durably: start-up leaves it alone too), release it
(due at once), bounce its queued recipients (a DSN like any other, status 5.0.0) or delete them
(final state "deleted", no DSN). A hold cancels the message's jobs; an attempt already running
finishes and records its outcomes. Bounce and delete wait for such an attempt (at most
ATTEMPT_WAIT seconds) before they end what is still queued, so no recipient gets two final
states and the operator's answer tells what the attempt did.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from relay.config.model import DeliverySettings
from relay.delivery.backoff import BackoffAction, BackoffRule, BackoffTable
from relay.delivery.budget import RateBudget
from relay.delivery.dsn import FailedRecipient, build_dsn
from relay.delivery.mx import MxResolver
from relay.delivery.scheduler import DestinationState, Job, Lane, Scheduler
from relay.delivery.shaping import Shaping
from relay.delivery.smtp_client import ConnectionPool, SessionLimits
from relay.delivery.tls_policy import TlsPolicy
from relay.errors import DeliveryError, SpoolError, StoreUnavailable
from relay.outage import Outage
from relay.spool.records import DeliveryResult, Envelope, Outcome, RecipientState
from relay.spool.store import QueuedGroup, Spool, new_queue_id

__all__ = [
    "ATTEMPT_WAIT",
    "OPERATOR_STATUS",
    "PAUSE_RECHECK",
    "AttemptInProgress",
    "Ended",
    "OutcomeListener",
    "PauseCheck",
    "QueueManager",
    "QueueSnapshot",
    "queued_job",
]

log = logging.getLogger("relay.delivery")

# Told the outcomes of each attempt once they are recorded (relay.feedback.delivery).
OutcomeListener = Callable[[Envelope, Sequence[Outcome]], Awaitable[None]]
# Whether a sender's commercial stream is paused (relay.policy.standing.is_paused).
PauseCheck = Callable[[str], Awaitable[bool]]

PAUSE_RECHECK = 60.0  # seconds between looks at the queued mail of a paused sender
ATTEMPT_WAIT = 30.0  # seconds an operator's action waits for a running attempt to end
OPERATOR_STATUS = "5.0.0"  # RFC 3463 "other undefined status": ended by an operator
_PAUSABLE = ("commercial", "mixed")  # MessageClass values whose mail a pause holds
_DESTINATION_TTL = 3600.0  # seconds a domain's destination (its provider) is remembered
_UNRESOLVED_TTL = 60.0  # ... when DNS could not tell: the domain is its own destination
_LOOKUPS = 32  # MX lookups for destinations at once
_TEND_EVERY = 5.0  # seconds; well within budget.LEASE_TTL and budget.NODE_TTL
_SEVERITY = {BackoffAction.SLOW: 1, BackoffAction.SUSPEND: 2, BackoffAction.PAUSE_SENDER: 3}


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _job_sender(sender_id: str | None, mail_from: str) -> str:
    """Whose mail a job is, for fairness and per-sender limits: the sender profile, else the
    envelope sender's domain ("<>" for relay's own DSNs)."""
    return sender_id or _domain(mail_from) or "<>"


def _transactional(message_class: str | None, mail_from: str) -> bool:
    return message_class == "transactional" or not mail_from


def queued_job(group: QueuedGroup, generation: int = 0) -> Job:
    """The job of a message's queued recipients at one domain, as the spool index has them."""
    return Job(
        group.queue_id,
        group.domain,
        _job_sender(group.sender_id, group.mail_from),
        transactional=_transactional(group.message_class, group.mail_from),
        cost=group.recipients if group.verp else 1,
        due_at=group.due_at,
        generation=generation,
    )


class AttemptInProgress(Exception):
    """A delivery attempt of the message did not end within ATTEMPT_WAIT; nothing else was
    changed (a bounce or delete leaves the message held); ask again."""


@dataclass(frozen=True, slots=True)
class Ended:
    """What an operator's bounce or delete did."""

    ended: tuple[str, ...]  # the recipients it ended (the others ended before or meanwhile)
    waited: bool  # it waited for an attempt in progress, whose outcomes are recorded
    dsn_queue_id: str | None = None  # the DSN queued to the envelope sender (bounce)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    destinations: list[DestinationState]
    sleeping: int  # jobs not yet due (retries, send-time windows)
    running: int  # attempts in progress


class QueueManager:
    def __init__(
        self,
        spool: Spool,
        resolver: MxResolver,
        settings: DeliverySettings,
        on_outcomes: OutcomeListener | None = None,
        *,
        tls_policy: TlsPolicy,
        shaping: Shaping,
        backoff: BackoffTable,
        paused: PauseCheck | None = None,
        budget: RateBudget | None = None,
    ) -> None:
        self._spool = spool
        self._paused = paused
        self._tls_policy = tls_policy
        self._on_outcomes = on_outcomes
        self._resolver = resolver
        self._settings = settings
        self._shaping = shaping
        self._backoff = backoff
        self._pool = ConnectionPool(settings)
        self._scheduler = Scheduler(budget)
        self._pauses_outage = Outage(
            log, "sender pause checks", "commercial and mixed mail waits in the queue"
        )
        self._destinations: dict[str, tuple[str, float]] = {}  # domain -> (name, until)
        self._resolving: dict[str, list[Job]] = {}
        self._lookups = asyncio.Semaphore(_LOOKUPS)
        self._running = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._attempts: dict[str, set[asyncio.Task[None]]] = {}  # queue id -> running attempts
        self._runner: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Schedule every queued recipient, as the spool index has them, then start running."""
        for group in await self._spool.queued():
            self._scheduler.add(queued_job(group))
        await self._scheduler.tend(time.time())  # a shared budget learns the fleet's size
        self._runner = asyncio.create_task(self._run(), name="queue-manager")
        self._reaper = asyncio.create_task(self._reap_idle(), name="idle-connections")

    async def stop(self, grace: float = 10.0) -> None:
        for task in (self._runner, self._reaper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._pool.close_idle()

    # -- scheduling -------------------------------------------------------------------------

    def enqueue(self, envelope: Envelope) -> None:
        """A message was just spooled: a job per domain, due now or when its first recipient
        there is released."""
        now = time.time()
        by_domain: dict[str, list[str]] = defaultdict(list)
        for recipient in envelope.recipients:
            by_domain[_domain(recipient)].append(recipient)
        sender = _job_sender(envelope.sender_id, envelope.mail_from)
        transactional = _transactional(envelope.message_class, envelope.mail_from)
        for domain, recipients in by_domain.items():
            self._scheduler.add(
                Job(
                    envelope.queue_id,
                    domain,
                    sender,
                    transactional=transactional,
                    cost=len(recipients) if envelope.verp_domain else 1,
                    due_at=min(envelope.not_before.get(r, now) for r in recipients),
                )
            )
        self._wake.set()

    def _reschedule(self, job: Job, due_at: float) -> None:
        job.due_at = due_at
        self._scheduler.add(job)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            now = time.time()
            for job in self._scheduler.pop_due(now):
                self._route(job, now)
            while self._running < self._settings.max_deliveries:
                taken = await self._scheduler.take(now)
                if taken is None:
                    break
                job, lane = taken
                self._running += 1
                task = asyncio.create_task(self._attempt(job, lane), name=f"deliver-{job}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                self._attempts.setdefault(job.queue_id, set()).add(task)
                task.add_done_callback(functools.partial(self._attempt_over, job.queue_id))
            self._wake.clear()
            # At max_deliveries only a finished attempt (which sets _wake) frees a slot.
            wake_at = (
                self._scheduler.next_wake()
                if self._running < self._settings.max_deliveries
                else None
            )
            timeout = None if wake_at is None else max(0.0, wake_at - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _attempt_over(self, queue_id: str, task: asyncio.Task[None]) -> None:
        running = self._attempts.get(queue_id)
        if running is not None:
            running.discard(task)
            if not running:
                del self._attempts[queue_id]

    def _route(self, job: Job, now: float) -> None:
        """Put a due job in its destination's queue, learning the destination first if needed."""
        known = self._destinations.get(job.domain)
        if known is not None and known[1] > now:
            self._scheduler.place(job, self._lane(known[0]))
            return
        waiting = self._resolving.get(job.domain)
        if waiting is not None:
            waiting.append(job)
            return
        self._resolving[job.domain] = [job]
        task = asyncio.create_task(self._learn_destination(job.domain), name=f"mx-{job.domain}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn_destination(self, domain: str) -> None:
        async with self._lookups:
            try:
                name = self._shaping.destination_of(await self._resolver.destination(domain))
                ttl = _DESTINATION_TTL
            except DeliveryError:
                name, ttl = domain, _UNRESOLVED_TTL  # the attempt reports the DNS failure
        self._destinations[domain] = (name, time.time() + ttl)
        lane = self._lane(name)
        for job in self._resolving.pop(domain):
            self._scheduler.place(job, lane)
        self._wake.set()

    def _lane(self, name: str) -> Lane:
        return self._scheduler.lane(name, self._shaping.limits(name))

    async def _reap_idle(self) -> None:
        """Close idle connections; tend the scheduler (idle destinations, the budget's slots);
        forget expired MX groupings."""
        idle = self._settings.idle_connection_timeout.total_seconds()
        while True:
            await asyncio.sleep(min(max(idle / 2, 0.5), _TEND_EVERY))
            await self._pool.close_idle(older_than=idle)
            now = time.time()
            await self._scheduler.tend(now)
            for domain, (_, until) in list(self._destinations.items()):
                if until <= now:
                    del self._destinations[domain]

    # -- operators (admin API) --------------------------------------------------------------

    def snapshot(self) -> QueueSnapshot:
        """Every destination's state, and the jobs sleeping and running."""
        return QueueSnapshot(
            self._scheduler.destinations(time.time()), len(self._scheduler), self._running
        )

    def attempting(self, queue_id: str) -> bool:
        """Whether a delivery attempt of the message is running now."""
        return queue_id in self._attempts

    async def hold(self, queue_id: str) -> bool:
        """Hold the message (durably); an attempt already running finishes. True when it was
        not held before."""
        changed = await self._spool.hold(queue_id, True)
        self._scheduler.cancel(queue_id)
        if changed:
            log.info("%s: held by an operator", queue_id)
        return changed

    async def wait_for_attempts(self, queue_id: str, within: float = ATTEMPT_WAIT) -> bool:
        """Wait until no attempt of the message runs (AttemptInProgress after `within`
        seconds); True when there was one to wait for."""
        running = self._attempts.get(queue_id)
        if not running:
            return False
        _, pending = await asyncio.wait(set(running), timeout=within)
        if pending:
            raise AttemptInProgress(
                f"{queue_id}: a delivery attempt is still in progress after {within:.0f}s"
            )
        return True

    async def release(self, queue_id: str) -> bool:
        """Release a held message: its queued recipients are due now (except those waiting
        for a send-time window). False when it was not held. Raises AttemptInProgress (still
        held) while an attempt made before the hold runs: two would deliver twice."""
        await self.wait_for_attempts(queue_id)
        if not await self._spool.hold(queue_id, False):
            return False
        now = time.time()
        await self._spool.due_now(queue_id, now)
        generation = self._scheduler.generation(queue_id)
        for group in await self._spool.queued(queue_id):
            self._scheduler.add(queued_job(group, generation))
        self._wake.set()
        log.info("%s: released by an operator", queue_id)
        return True

    async def bounce(self, queue_id: str, reason: str) -> Ended:
        """Bounce the message's queued recipients with a DSN to its envelope sender: held
        first, then, once no attempt runs, the DSN spooled, then the recipients ended."""
        return await self._end(
            queue_id, RecipientState.BOUNCED, f"bounced by the operator: {reason}"
        )

    async def delete(self, queue_id: str, reason: str) -> Ended:
        """End the message's queued recipients as deleted, without DSN, and remove its queue
        file (held first, then ended once no attempt runs)."""
        return await self._end(
            queue_id, RecipientState.DELETED, f"deleted by the operator: {reason}"
        )

    async def _end(self, queue_id: str, state: RecipientState, diagnostic: str) -> Ended:
        await self.hold(queue_id)
        waited = await self.wait_for_attempts(queue_id)
        pending = await self._spool.pending(queue_id)
        if not pending:
            await self._spool.remove(queue_id)
            return Ended((), waited)
        result = DeliveryResult(OPERATOR_STATUS, diagnostic)
        now = time.time()
        notice: Envelope | None = None
        if state is RecipientState.BOUNCED:
            envelope, content = await self._spool.load(queue_id)
            failures = [FailedRecipient(recipient.address, result) for recipient in pending]
            # Spooled before the recipients end, as after an attempt: never a bounce without
            # its notice.
            notice = await self._queue_dsn(envelope, content, failures, now)
        ended = await self._spool.end(queue_id, [r.address for r in pending], state, result)
        for address in ended:
            log.info(
                "%s: to=<%s> relay=none status=%s dsn=%s (%s)",
                queue_id,
                address,
                state.value,
                result.status,
                result.diagnostic,
            )
        await self._spool.remove(queue_id)
        if notice is not None:
            self.enqueue(notice)
        return Ended(tuple(ended), waited, notice.queue_id if notice is not None else None)

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, job: Job, lane: Lane) -> None:
        try:
            await self._deliver(job, lane)
        except SpoolError as exc:
            log.error("%s: delivery attempt failed: %s; retrying in 60s", job.queue_id, exc)
            self._reschedule(job, time.time() + 60)
        except Exception:
            log.exception("%s: unexpected error during delivery; retrying in 60s", job.queue_id)
            self._reschedule(job, time.time() + 60)
        finally:
            self._running -= 1
            await self._scheduler.release(lane, job)  # before the wake: its slots are free
            self._wake.set()

    async def _deliver(self, job: Job, lane: Lane) -> None:
        queue_id = job.queue_id
        try:
            (envelope, content), pending = await asyncio.gather(
                self._spool.load(queue_id), self._spool.pending(queue_id)
            )
        except SpoolError as exc:
            await self._spool.set_aside(queue_id, str(exc))
            return
        if not pending:
            await self._spool.remove(queue_id)
            return
        started = time.time()
        mine = [recipient for recipient in pending if _domain(recipient.address) == job.domain]
        due = [recipient for recipient in mine if recipient.next_attempt_at <= started]
        later = [r.next_attempt_at for r in mine if r.next_attempt_at > started]
        if not due:
            if later:
                self._reschedule(job, min(later))
            return
        if await self._waits(envelope):
            self._reschedule(job, started + PAUSE_RECHECK)
            return
        if not self._scheduler.current(job):
            log.info("%s: held by an operator; not attempted", queue_id)
            return
        attempts = {recipient.address: recipient.attempts for recipient in due}
        results = await self._deliver_to_domain(
            lane, envelope, [recipient.address for recipient in due], content
        )
        now = time.time()
        held_until = self._observe(lane, job, results, now)
        outcomes = [
            self._outcome(envelope, address, result, attempts[address], now, held_until)
            for address, result in results.items()
        ]
        failures = [
            FailedRecipient(address, result, expired=state is RecipientState.EXPIRED)
            for address, state, result, _ in outcomes
            if state in (RecipientState.BOUNCED, RecipientState.EXPIRED)
        ]
        if failures:
            # The notice is spooled before the failures are recorded: a crash in between
            # repeats the attempt (and perhaps the notice) but never loses the notice.
            await self._notify_sender(envelope, content, failures, now)
        remaining = await self._spool.record(queue_id, outcomes)
        for address, state, result, next_attempt_at in outcomes:
            self._log(envelope, address, state, result, next_attempt_at, now)
        if self._on_outcomes is not None:
            await self._on_outcomes(envelope, outcomes)
        retries = [at for _, state, _, at in outcomes if state is RecipientState.QUEUED]
        if retries or later:
            self._reschedule(job, min([*retries, *later]))
        elif not remaining:
            await self._spool.remove(queue_id)

    async def _waits(self, envelope: Envelope) -> bool:
        """The message is commercial mail of a paused sender (or the stores cannot tell)."""
        if (
            self._paused is None
            or envelope.sender_id is None
            or envelope.message_class not in _PAUSABLE
        ):
            return False
        try:
            paused = await self._paused(envelope.sender_id)
        except StoreUnavailable as exc:
            self._pauses_outage.failed(exc)
            log.debug("%s: waits: sender pause unknown: %s", envelope.queue_id, exc)
            return True
        self._pauses_outage.answered()
        if paused:
            log.info("%s: waits: sender %s is paused", envelope.queue_id, envelope.sender_id)
        return paused

    async def _deliver_to_domain(
        self, lane: Lane, envelope: Envelope, recipients: list[str], content: bytes
    ) -> dict[str, DeliveryResult]:
        try:
            destination = await self._resolver.destination(_domain(recipients[0]))
            plan = await self._tls_policy.plan(destination)
        except DeliveryError as exc:
            return dict.fromkeys(recipients, DeliveryResult(exc.status, exc.diagnostic))
        limits = SessionLimits(
            destination=lane.name,
            max_open=lane.max_connections,
            messages_per_connection=lane.limits.messages_per_connection,
            connect_timeout=lane.limits.connect_timeout,
            command_timeout=lane.limits.command_timeout,
        )
        # One SMTP transaction per return path: the recipients share the mailer's, but under
        # VERP each has its own. When a host fails, the next one gets only the transactions
        # not yet completed, so no recipient is sent the message twice.
        transactions: dict[str, list[str]] = defaultdict(list)
        for recipient in recipients:
            transactions[envelope.return_path(recipient)].append(recipient)
        results: dict[str, DeliveryResult] = {}
        last_failure: DeliveryError | None = None
        for host in plan.hosts:
            try:
                for return_path, batch in list(transactions.items()):
                    results |= await self._pool.send(
                        host, envelope, return_path, batch, content, limits, plan.required_by
                    )
                    del transactions[return_path]
                return results
            except DeliveryError as exc:
                log.info("%s: %s; trying the next host", envelope.queue_id, exc.diagnostic)
                last_failure = exc
        assert last_failure is not None
        failure = DeliveryResult(
            last_failure.status, last_failure.diagnostic, last_failure.remote_mta
        )
        left = [recipient for batch in transactions.values() for recipient in batch]
        return results | dict.fromkeys(left, failure)

    def _observe(
        self, lane: Lane, job: Job, results: dict[str, DeliveryResult], now: float
    ) -> dict[str, float]:
        """Let the replies of an attempt set the destination's pace (config/backoff.toml);
        return the recipients kept queued by a pause of their sender there, with its end."""
        matched: dict[DeliveryResult, BackoffRule] = {}
        for result in set(results.values()):
            rule = self._backoff.match(result)
            if rule is not None:
                matched[result] = rule
        if not matched:
            succeeded = any(result.success for result in results.values())
            if succeeded and lane.pace.succeed(self._backoff.recovery):
                self._log_pace(lane, "recovering after sustained success")
                self._scheduler.wake(lane)
            return {}
        result, rule = max(matched.items(), key=lambda item: _SEVERITY[item[1].action])
        why = f"{rule.name}: {result.diagnostic}"
        if rule.action is BackoffAction.PAUSE_SENDER:
            until = now + rule.duration.total_seconds()
            if lane.paused_senders.get(job.sender, 0.0) < until:
                lane.paused_senders[job.sender] = until
                log.warning(
                    "destination %s: sender %s paused there for %ds (%s); its mail to %s waits,"
                    " other senders' goes on",
                    lane.name,
                    job.sender,
                    rule.duration.total_seconds(),
                    why,
                    lane.name,
                )
            paused = lane.paused_senders[job.sender]
            return {
                address: paused
                for address, outcome in results.items()
                if matched.get(outcome) is rule
            }
        if lane.pace.slow(self._backoff.recovery, now):
            self._log_pace(lane, f"slowed down ({why})")
        if rule.action is BackoffAction.SUSPEND and lane.pace.suspend(
            now + rule.duration.total_seconds()
        ):
            log.warning(
                "destination %s: suspended for %ds (%s)",
                lane.name,
                rule.duration.total_seconds(),
                why,
            )
        return {}

    @staticmethod
    def _log_pace(lane: Lane, why: str) -> None:
        rates = ", ".join(f"{amount}/{period}s" for amount, period in lane.rates()) or "no rate"
        log.warning(
            "destination %s: %s; now %d%% of its limits: %d connections, %s",
            lane.name,
            why,
            round(lane.pace.factor * 100),
            lane.max_connections,
            rates,
        )

    def _outcome(
        self,
        envelope: Envelope,
        address: str,
        result: DeliveryResult,
        attempts: int,
        now: float,
        held_until: dict[str, float],
    ) -> Outcome:
        if result.success:
            return address, RecipientState.DELIVERED, result, now
        held = held_until.get(address)
        if result.permanent and held is None:
            return address, RecipientState.BOUNCED, result, now
        # A recipient held for a send-time window lives from its release on.
        born = envelope.not_before.get(address, envelope.received_at)
        deadline = born + self._settings.max_lifetime.total_seconds()
        if now >= deadline:
            return address, RecipientState.EXPIRED, result, now
        if held is None:
            schedule = self._settings.retry_schedule
            jitter = self._settings.retry_jitter
            delay = schedule[min(attempts, len(schedule) - 1)].total_seconds()
            held = now + delay * random.uniform(1 - jitter, 1 + jitter)
        return address, RecipientState.QUEUED, result, min(held, deadline)

    @staticmethod
    def _log(
        envelope: Envelope,
        address: str,
        state: RecipientState,
        result: DeliveryResult,
        next_attempt_at: float,
        now: float,
    ) -> None:
        retry = f", retry in {next_attempt_at - now:.0f}s" if not state.final else ""
        log.info(
            "%s: to=<%s> relay=%s status=%s dsn=%s (%s)%s",
            envelope.queue_id,
            address,
            result.remote_mta or "none",
            state.value,
            result.status,
            result.diagnostic,
            retry,
        )

    async def _queue_dsn(
        self, envelope: Envelope, content: bytes, failures: list[FailedRecipient], now: float
    ) -> Envelope | None:
        """Spool a DSN of `failures` to the envelope sender (None: a null sender, no DSN);
        SpoolError when it cannot. Schedule it with enqueue()."""
        if not envelope.mail_from:
            log.info("%s: no DSN: the message had a null sender", envelope.queue_id)
            return None
        report = build_dsn(envelope, content, failures, self._settings.helo_name, now)
        notice = Envelope(
            queue_id=new_queue_id(),
            mail_from="",
            recipients=(envelope.mail_from,),
            received_at=now,
            smtputf8=not envelope.mail_from.isascii(),
        )
        await self._spool.accept(notice, report)
        log.info("%s: sender non-delivery notification: %s", envelope.queue_id, notice.queue_id)
        return notice

    async def _notify_sender(
        self, envelope: Envelope, content: bytes, failures: list[FailedRecipient], now: float
    ) -> None:
        try:
            notice = await self._queue_dsn(envelope, content, failures, now)
        except SpoolError as exc:
            # Raising would retry the whole attempt and deliver to the recipients that just
            # succeeded again; the failures are still recorded and logged.
            log.error(
                "%s: could not queue the DSN to <%s>: %s",
                envelope.queue_id,
                envelope.mail_from,
                exc,
            )
            return
        if notice is not None:
            self.enqueue(notice)
