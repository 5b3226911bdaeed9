"""The queue manager: picks due messages from the spool, delivers each recipient group to its
destination, records one outcome per recipient and schedules the retry, bounce or expiry.

Recipient outcomes (DESIGN §3): success -> delivered; 5xx or permanent DNS failure -> bounced
with a DSN; 4xx or no connection -> retried on [delivery] retry_schedule until max_lifetime,
then expired with a DSN. A DSN is queued like any other message, from the null reverse path.

Commercial (and mixed) mail of a paused sender (relay.policy.standing) is not attempted: it is
looked at again every PAUSE_RECHECK seconds, its attempts and retry schedule untouched, so the
pause costs it no attempt; its max_lifetime runs on, but it expires only after a failed attempt
past it, so mail that waited out a long pause still gets one attempt after the resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from itertools import count

from relay.config.model import DeliverySettings
from relay.delivery.dsn import FailedRecipient, build_dsn
from relay.delivery.mx import MxResolver
from relay.delivery.smtp_client import ConnectionPool
from relay.delivery.tls_policy import TlsPolicy
from relay.errors import DeliveryError, SpoolError, StoreUnavailable
from relay.spool.records import DeliveryResult, Envelope, Outcome, RecipientState
from relay.spool.store import Spool, new_queue_id

__all__ = ["PAUSE_RECHECK", "OutcomeListener", "PauseCheck", "QueueManager"]

log = logging.getLogger("relay.delivery")

# Told the outcomes of each attempt once they are recorded (relay.feedback.delivery).
OutcomeListener = Callable[[Envelope, Sequence[Outcome]], Awaitable[None]]
# Whether a sender's commercial stream is paused (relay.policy.standing.is_paused).
PauseCheck = Callable[[str], Awaitable[bool]]

PAUSE_RECHECK = 60.0  # seconds between looks at the queued mail of a paused sender
_PAUSABLE = ("commercial", "mixed")  # MessageClass values whose mail a pause holds


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


class QueueManager:
    def __init__(
        self,
        spool: Spool,
        resolver: MxResolver,
        settings: DeliverySettings,
        on_outcomes: OutcomeListener | None = None,
        *,
        tls_policy: TlsPolicy,
        paused: PauseCheck | None = None,
    ) -> None:
        self._spool = spool
        self._paused = paused
        self._tls_policy = tls_policy
        self._on_outcomes = on_outcomes
        self._resolver = resolver
        self._settings = settings
        self._pool = ConnectionPool(settings)
        self._heap: list[tuple[float, int, str]] = []
        self._sequence = count()
        self._scheduled: dict[str, float] = {}
        self._active: set[str] = set()
        self._slots = asyncio.Semaphore(settings.max_deliveries)
        self._per_destination: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.max_connections_per_destination)
        )
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Schedule every message with a non-final recipient, then start running."""
        for queue_id, due_at in await self._spool.due():
            self._schedule(queue_id, due_at)
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
        """A message was just spooled: try it now, or when its first recipient is released."""
        now = time.time()
        self._schedule(
            envelope.queue_id, min(envelope.not_before.get(r, now) for r in envelope.recipients)
        )

    def _schedule(self, queue_id: str, due_at: float) -> None:
        current = self._scheduled.get(queue_id)
        if current is not None and current <= due_at:
            return
        self._scheduled[queue_id] = due_at
        heapq.heappush(self._heap, (due_at, next(self._sequence), queue_id))
        if self._heap[0][2] == queue_id:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                due_at, _, queue_id = heapq.heappop(self._heap)
                if self._scheduled.get(queue_id) != due_at:
                    continue  # superseded by an earlier schedule
                del self._scheduled[queue_id]
                if queue_id in self._active:
                    continue  # the running attempt reschedules it
                await self._slots.acquire()
                self._active.add(queue_id)
                task = asyncio.create_task(self._attempt(queue_id), name=f"deliver-{queue_id}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self._wake.clear()
            timeout = self._heap[0][0] - time.time() if self._heap else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _reap_idle(self) -> None:
        idle = self._settings.idle_connection_timeout.total_seconds()
        while True:
            await asyncio.sleep(max(idle / 2, 0.5))
            await self._pool.close_idle(older_than=idle)

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, queue_id: str) -> None:
        try:
            await self._deliver(queue_id)
        except SpoolError as exc:
            log.error("%s: delivery attempt failed: %s; retrying in 60s", queue_id, exc)
            self._schedule(queue_id, time.time() + 60)
        except Exception:
            log.exception("%s: unexpected error during delivery; retrying in 60s", queue_id)
            self._schedule(queue_id, time.time() + 60)
        finally:
            self._active.discard(queue_id)
            self._slots.release()

    async def _deliver(self, queue_id: str) -> None:
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
        due = [recipient for recipient in pending if recipient.next_attempt_at <= started]
        later = [r.next_attempt_at for r in pending if r.next_attempt_at > started]
        if not due:
            self._schedule(queue_id, min(later))
            return
        if await self._waits(envelope):
            self._schedule(queue_id, started + PAUSE_RECHECK)
            return
        attempts = {recipient.address: recipient.attempts for recipient in due}
        by_domain: dict[str, list[str]] = defaultdict(list)
        for recipient in due:
            by_domain[_domain(recipient.address)].append(recipient.address)
        groups = await asyncio.gather(
            *(
                self._deliver_to_domain(domain, envelope, recipients, content)
                for domain, recipients in by_domain.items()
            )
        )
        now = time.time()
        outcomes = [
            self._outcome(envelope, address, result, attempts[address], now)
            for group in groups
            for address, result in group.items()
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
        if remaining:
            retries = [at for _, state, _, at in outcomes if state is RecipientState.QUEUED]
            self._schedule(queue_id, min([*retries, *later], default=now))
        else:
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
            log.warning("%s: waits: sender pause unknown: %s", envelope.queue_id, exc)
            return True
        if paused:
            log.info("%s: waits: sender %s is paused", envelope.queue_id, envelope.sender_id)
        return paused

    async def _deliver_to_domain(
        self, domain: str, envelope: Envelope, recipients: list[str], content: bytes
    ) -> dict[str, DeliveryResult]:
        try:
            destination = await self._resolver.destination(domain)
            plan = await self._tls_policy.plan(destination)
        except DeliveryError as exc:
            return dict.fromkeys(recipients, DeliveryResult(exc.status, exc.diagnostic))
        # One SMTP transaction per return path: the recipients share the mailer's, but under
        # VERP each has its own. When a host fails, the next one gets only the transactions
        # not yet completed, so no recipient is sent the message twice.
        transactions: dict[str, list[str]] = defaultdict(list)
        for recipient in recipients:
            transactions[envelope.return_path(recipient)].append(recipient)
        results: dict[str, DeliveryResult] = {}
        last_failure: DeliveryError | None = None
        async with self._per_destination[domain]:
            for host in plan.hosts:
                try:
                    for return_path, batch in list(transactions.items()):
                        results |= await self._pool.send(
                            host, envelope, return_path, batch, content, plan.required_by
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

    def _outcome(
        self, envelope: Envelope, address: str, result: DeliveryResult, attempts: int, now: float
    ) -> Outcome:
        if result.success:
            return address, RecipientState.DELIVERED, result, now
        if result.permanent:
            return address, RecipientState.BOUNCED, result, now
        # A recipient held for a send-time window lives from its release on.
        born = envelope.not_before.get(address, envelope.received_at)
        deadline = born + self._settings.max_lifetime.total_seconds()
        if now >= deadline:
            return address, RecipientState.EXPIRED, result, now
        schedule = self._settings.retry_schedule
        delay = schedule[min(attempts, len(schedule) - 1)].total_seconds()
        return address, RecipientState.QUEUED, result, min(now + delay, deadline)

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

    async def _notify_sender(
        self, envelope: Envelope, content: bytes, failures: list[FailedRecipient], now: float
    ) -> None:
        if not envelope.mail_from:
            log.info("%s: no DSN: the message had a null sender", envelope.queue_id)
            return
        report = build_dsn(envelope, content, failures, self._settings.helo_name, now)
        notice = Envelope(
            queue_id=new_queue_id(),
            mail_from="",
            recipients=(envelope.mail_from,),
            received_at=now,
            smtputf8=not envelope.mail_from.isascii(),
        )
        try:
            await self._spool.accept(notice, report)
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
        log.info("%s: sender non-delivery notification: %s", envelope.queue_id, notice.queue_id)
        self.enqueue(notice)
