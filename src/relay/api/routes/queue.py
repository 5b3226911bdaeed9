"""The node's queue: what each destination is doing, which messages wait and why (operator,
compliance); hold, release, bounce or delete a message (operator).

    GET    /queue/destinations                 per destination: waiting, active, limits, pace
    GET    /queue/messages                     queued messages (sender_id, domain, held; cursor)
    GET    /queue/messages/{id}                one message with each recipient's state
    POST   /queue/messages/{id}/hold           not attempted until released (survives restarts)
    POST   /queue/messages/{id}/release        due again now (send-time windows still apply)
    POST   /queue/messages/{id}/bounce         queued recipients bounced (5.0.0), DSN to sender
    DELETE /queue/messages/{id}                queued recipients deleted, no DSN, file removed

A change is audited (stage "admin", with the queue id) before it is made. 404: the spool never
had the message; 409: none of its recipients is queued any more. An attempt already running
finishes first: a hold lets it (the answer says so), a bounce or delete waits for it and ends
only what it left queued (the answer lists every recipient's state), and when it runs longer
than relay.delivery.queue_manager.ATTEMPT_WAIT the answer is 503 with the message held.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from relay.api.admin import Admin
from relay.api.auth import OPERATOR, READERS, Principal
from relay.delivery.queue_manager import AttemptInProgress, Ended
from relay.delivery.scheduler import DestinationState
from relay.errors import SpoolError
from relay.spool.records import MessageSummary, RecipientState, RecipientStatus

__all__ = ["router"]

QueueId = Annotated[str, Path(min_length=1, max_length=64, description="The queue id.")]
_RETRY_ATTEMPT = "5"  # seconds: Retry-After while an attempt of the message runs


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _rates(rates: tuple[tuple[int, int], ...]) -> list[str]:
    return [f"{amount}/{period}s" for amount, period in rates]


# -- models ------------------------------------------------------------------------------------


class PausedSender(BaseModel):
    sender: str  # sender id, or the envelope sender's domain
    until: datetime


class Pace(BaseModel):
    """How much of its configured limits the destination may use now (backoff)."""

    factor_percent: int
    max_connections: int
    rates: list[str]
    suspended_until: datetime | None
    paused_senders: list[PausedSender]


class Destination(BaseModel):
    name: str
    waiting: int  # jobs (a message's recipients there) due and waiting for a connection
    active: int  # jobs being attempted: connections in use
    max_connections: int  # as configured
    messages_per_connection: int
    rates: list[str]  # as configured, e.g. "600/60s"
    sender_max_connections: int | None
    sender_rates: list[str]
    pace: Pace


class QueueTotals(BaseModel):
    messages: int  # with queued recipients
    recipients: int  # queued
    held: int  # messages held by an operator
    waiting: int  # jobs due, at their destinations
    running: int  # attempts in progress
    sleeping: int  # jobs not yet due (retries, send-time windows)


class Destinations(BaseModel):
    destinations: list[Destination]
    totals: QueueTotals


class MessageItem(BaseModel):
    queue_id: str
    mail_from: str
    sender_id: str | None
    message_class: str | None
    received_at: datetime
    size: int
    held: bool  # by an operator
    recipients: int
    queued: int
    next_attempt_at: datetime | None
    attempt_in_progress: bool


class MessagePage(BaseModel):
    items: list[MessageItem]
    next_cursor: str | None  # give it as `cursor` for the next page; None: the last page


class Recipient(BaseModel):
    address: str
    state: RecipientState
    attempts: int
    next_attempt_at: datetime | None
    last_status: str | None
    last_diagnostic: str | None
    remote_mta: str | None
    updated_at: datetime


class EnvelopeInfo(BaseModel):
    """From the queue file, while the message has one."""

    client_address: str
    client_helo: str
    auth_user: str | None
    campaign: str | None
    verp_domain: str | None
    smtputf8: bool


class MessageDetail(MessageItem):
    envelope: EnvelopeInfo | None
    recipients_detail: list[Recipient]


class ActionResult(BaseModel):
    queue_id: str
    action: str
    changed: bool  # False: nothing to do (already held, not held, ...)
    note: str  # what happened, in a sentence
    ended: list[str] = Field(default_factory=list)  # recipients this bounce or delete ended
    waited_for_attempt: bool = False  # an attempt in progress ended first
    dsn_queue_id: str | None = None
    message: MessageDetail


class BounceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)]


# -- the routes --------------------------------------------------------------------------------


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["queue"])
    reader = Annotated[Principal, Depends(admin.auth.allow(*READERS))]
    operator = Annotated[Principal, Depends(admin.auth.allow(*OPERATOR))]

    def destination(state: DestinationState) -> Destination:
        limits = state.limits
        return Destination(
            name=state.name,
            waiting=state.waiting,
            active=state.active,
            max_connections=limits.max_connections,
            messages_per_connection=limits.messages_per_connection,
            rates=[str(rate) for rate in limits.rates],
            sender_max_connections=limits.sender_connections,
            sender_rates=[str(rate) for rate in limits.sender_rates],
            pace=Pace(
                factor_percent=round(state.pace * 100),
                max_connections=state.max_connections,
                rates=_rates(state.rates),
                suspended_until=_moment(state.suspended_until),
                paused_senders=[
                    PausedSender(sender=sender, until=datetime.fromtimestamp(until, UTC))
                    for sender, until in sorted(state.paused_senders.items())
                ],
            ),
        )

    def item(summary: MessageSummary) -> MessageItem:
        return MessageItem(
            queue_id=summary.queue_id,
            mail_from=summary.mail_from,
            sender_id=summary.sender_id,
            message_class=summary.message_class,
            received_at=datetime.fromtimestamp(summary.received_at, UTC),
            size=summary.size,
            held=summary.held,
            recipients=summary.recipients,
            queued=summary.queued,
            next_attempt_at=_moment(summary.next_attempt_at),
            attempt_in_progress=admin.queue.attempting(summary.queue_id),
        )

    def recipient(status: RecipientStatus) -> Recipient:
        return Recipient(
            address=status.address,
            state=status.state,
            attempts=status.attempts,
            next_attempt_at=_moment(status.next_attempt_at),
            last_status=status.status,
            last_diagnostic=status.diagnostic,
            remote_mta=status.remote_mta,
            updated_at=datetime.fromtimestamp(status.updated_at, UTC),
        )

    async def detail(queue_id: str) -> MessageDetail:
        found = await admin.spool.message(queue_id)
        if found is None:
            raise HTTPException(404, f"no message {queue_id!r} in the spool")
        summary, recipients = found
        envelope: EnvelopeInfo | None = None
        if summary.queued:
            try:
                loaded, _ = await admin.spool.load(queue_id)
            except SpoolError:
                pass  # ended and removed meanwhile, or unreadable (set aside at its attempt)
            else:
                envelope = EnvelopeInfo(
                    client_address=loaded.client_address,
                    client_helo=loaded.client_helo,
                    auth_user=loaded.auth_user,
                    campaign=loaded.campaign,
                    verp_domain=loaded.verp_domain,
                    smtputf8=loaded.smtputf8,
                )
        return MessageDetail(
            **item(summary).model_dump(),
            envelope=envelope,
            recipients_detail=[recipient(status) for status in recipients],
        )

    async def queued(queue_id: str, action: str) -> MessageSummary:
        """The message, 404 when unknown, 409 when nothing of it is queued."""
        found = await admin.spool.message(queue_id)
        if found is None:
            raise HTTPException(404, f"no message {queue_id!r} in the spool")
        summary, recipients = found
        if not summary.queued:
            states = ", ".join(sorted({status.state.value for status in recipients}))
            raise HTTPException(
                409, f"cannot {action} {queue_id}: none of its recipients is queued ({states})"
            )
        return summary

    async def audit(
        principal: Principal,
        summary: MessageSummary,
        action: str,
        detail_text: str,
        **inputs: object,
    ) -> None:
        await admin.record(
            admin.event(
                principal,
                f"queue-{action}",
                detail_text,
                sender_id=summary.sender_id,
                queue_id=summary.queue_id,
                inputs={"queued": summary.queued, **inputs},
            )
        )

    def in_progress(exc: AttemptInProgress, what: str) -> HTTPException:
        return HTTPException(
            503, f"{exc}; {what}; ask again", headers={"Retry-After": _RETRY_ATTEMPT}
        )

    @routes.get("/queue/destinations", summary="Each destination's queue, limits and pace")
    async def destinations(principal: reader) -> Destinations:
        snapshot = admin.queue.snapshot()
        counts = await admin.spool.counts()
        return Destinations(
            destinations=[destination(state) for state in snapshot.destinations],
            totals=QueueTotals(
                messages=counts.messages,
                recipients=counts.recipients,
                held=counts.held,
                waiting=sum(state.waiting for state in snapshot.destinations),
                running=snapshot.running,
                sleeping=snapshot.sleeping,
            ),
        )

    @routes.get("/queue/messages", summary="Queued messages, oldest first")
    async def messages(
        principal: reader,
        sender_id: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        domain: Annotated[
            str | None,
            Query(min_length=1, max_length=253, description="with queued recipients there"),
        ] = None,
        held: Annotated[bool | None, Query(description="held by an operator, or not")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> MessagePage:
        found = await admin.spool.messages(
            after=cursor or "",
            limit=limit + 1,
            sender_id=sender_id,
            domain=domain.strip().rstrip(".") if domain else None,
            held=held,
        )
        page = found[:limit]
        more = len(found) > limit
        return MessagePage(
            items=[item(summary) for summary in page],
            next_cursor=page[-1].queue_id if more else None,
        )

    @routes.get("/queue/messages/{queue_id}", summary="A message and its recipients' states")
    async def message(queue_id: QueueId, principal: reader) -> MessageDetail:
        return await detail(queue_id)

    @routes.post("/queue/messages/{queue_id}/hold", summary="Hold a message")
    async def hold(queue_id: QueueId, principal: operator) -> ActionResult:
        summary = await queued(queue_id, "hold")
        if summary.held:
            return ActionResult(
                queue_id=queue_id,
                action="hold",
                changed=False,
                note="already held",
                message=await detail(queue_id),
            )
        await audit(principal, summary, "hold", f"hold message {queue_id}")
        await admin.queue.hold(queue_id)
        running = admin.queue.attempting(queue_id)
        note = (
            "held; an attempt that started before the hold is finishing and its outcomes will"
            " be recorded; no further attempt until released"
            if running
            else "held; no attempt until released"
        )
        return ActionResult(
            queue_id=queue_id,
            action="hold",
            changed=True,
            note=note,
            message=await detail(queue_id),
        )

    @routes.post("/queue/messages/{queue_id}/release", summary="Release a held message")
    async def release(queue_id: QueueId, principal: operator) -> ActionResult:
        summary = await queued(queue_id, "release")
        if not summary.held:
            return ActionResult(
                queue_id=queue_id,
                action="release",
                changed=False,
                note="not held",
                message=await detail(queue_id),
            )
        try:
            # Before the record: a release refused for a running attempt changes nothing.
            await admin.queue.wait_for_attempts(queue_id)
            await audit(principal, summary, "release", f"release message {queue_id}")
            changed = await admin.queue.release(queue_id)
        except AttemptInProgress as exc:
            raise in_progress(exc, "the message stays held") from None
        return ActionResult(
            queue_id=queue_id,
            action="release",
            changed=changed,
            note="released: its queued recipients are due now" if changed else "not held",
            message=await detail(queue_id),
        )

    async def end(principal: Principal, queue_id: str, action: str, reason: str) -> ActionResult:
        summary = await queued(queue_id, action)
        await audit(
            principal, summary, action, f"{action} message {queue_id}: {reason}", reason=reason
        )
        try:
            if action == "bounce":
                ended: Ended = await admin.queue.bounce(queue_id, reason)
            else:
                ended = await admin.queue.delete(queue_id, reason)
        except AttemptInProgress as exc:
            raise in_progress(exc, "the message is held, nothing was ended") from None
        state = "bounced" if action == "bounce" else "deleted"
        note = f"{len(ended.ended)} recipient(s) {state}"
        if ended.waited:
            note += "; an attempt in progress ended first and its outcomes are kept"
        if action == "bounce":
            note += (
                f"; DSN {ended.dsn_queue_id} queued to the envelope sender"
                if ended.dsn_queue_id
                else "; no DSN"
            )
        return ActionResult(
            queue_id=queue_id,
            action=action,
            changed=bool(ended.ended),
            note=note,
            ended=list(ended.ended),
            waited_for_attempt=ended.waited,
            dsn_queue_id=ended.dsn_queue_id,
            message=await detail(queue_id),
        )

    @routes.post(
        "/queue/messages/{queue_id}/bounce",
        summary="Bounce a message's queued recipients (DSN to the sender)",
    )
    async def bounce(queue_id: QueueId, body: BounceBody, principal: operator) -> ActionResult:
        return await end(principal, queue_id, "bounce", body.reason)

    @routes.delete(
        "/queue/messages/{queue_id}",
        summary="Delete a message's queued recipients (no DSN)",
    )
    async def delete(
        queue_id: QueueId,
        principal: operator,
        reason: Annotated[str, Query(min_length=1, max_length=500)] = "no reason given",
    ) -> ActionResult:
        return await end(principal, queue_id, "delete", reason)

    return routes
