"""What the submission listener does with a complete transaction: stamp it and spool it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session

from relay import replies
from relay.audit.records import AuditEvent
from relay.errors import SigningError, SpoolError
from relay.metrics import SUBMISSIONS
from relay.policy.checkpoint import Checkpoint, Transaction
from relay.replies import Reply
from relay.rewrite.verp import verp_return_path
from relay.signing.signer import Signer
from relay.spool.records import Envelope
from relay.spool.store import Spool, new_queue_id
from relay.stores.stats import Kind, ListStats, Tally, destination_of, tally

__all__ = ["SubmissionHandler", "received_header"]

log = logging.getLogger("relay.ingest")

_EXTENSIONS = ["250-PIPELINING", "250-ENHANCEDSTATUSCODES"]
# RFC 3463 X.6.0: the header section cannot be read well enough to sign it.
UNSIGNABLE = Reply(554, "5.6.0", "Cannot sign the message")


def received_header(session: Session, envelope: Envelope, hostname: str) -> bytes:
    """An RFC 5321 §4.4 trace line; the protocol keyword follows RFC 3848."""
    protocol = "ESMTP" if session.extended_smtp else "SMTP"
    if session.ssl is not None:
        protocol += "S"
    if session.authenticated:
        protocol += "A"
    tls = ""
    if session.ssl is not None:
        cipher = session.ssl.get("cipher")
        if cipher:
            tls = f"\r\n\t(using {cipher[1]} with cipher {cipher[0]})"
    recipient = f"\r\n\tfor <{envelope.recipients[0]}>" if len(envelope.recipients) == 1 else ""
    helo = session.host_name or "unknown"
    stamp = formatdate(envelope.received_at, localtime=True)
    line = (
        f"Received: from {helo} ([{envelope.client_address}])\r\n"
        f"\tby {hostname} (relay) with {protocol} id {envelope.queue_id}{tls}{recipient};\r\n"
        f"\t{stamp}\r\n"
    )
    return line.encode("utf-8")


class SubmissionHandler:
    """aiosmtpd handler of the submission listener: asks the policy stage about each
    transaction, then spools what it accepts."""

    def __init__(
        self,
        spool: Spool,
        checkpoint: Checkpoint,
        signer: Signer,
        hostname: str,
        on_queued: Callable[[Envelope], None],
        stats: ListStats,
    ) -> None:
        self._spool = spool
        self._stats = stats
        self._checkpoint = checkpoint
        self._signer = signer
        self._hostname = hostname
        self._on_queued = on_queued
        self._background: set[asyncio.Task[None]] = set()

    @property
    def refuses_long_lines(self) -> bool:
        """Ingest refuses lines over 998 octets unless a policy decides them (and may fix them
        by re-encoding the part)."""
        return not self._checkpoint.decides_line_length

    async def handle_EHLO(
        self,
        server: Any,
        session: Session,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return responses[:-1] + _EXTENSIONS + responses[-1:]

    async def handle_exception(self, error: Exception) -> str:
        log.error("ingest: unexpected error, answered 451: %r", error, exc_info=error)
        return str(replies.SPOOL_FAILURE.but("Local error, try again later"))

    async def open_transaction(
        self, session: Session, envelope: SmtpEnvelope, trusted: bool
    ) -> Transaction | Reply:
        return await self._checkpoint.begin(
            mail_from=envelope.mail_from or "",
            authenticated_as=session.auth_data if session.authenticated else None,
            trusted_client=trusted,
            client_address=session.peer[0] if session.peer else "",
        )

    async def recipient(self, transaction: Transaction, address: str) -> Reply:
        return await self._checkpoint.recipient(transaction, address)

    def abandon(self, transaction: Transaction) -> None:
        """The transaction ended without a message: record its RCPT-time decisions."""
        if not transaction.pending_audit:
            return
        self._in_background(self._checkpoint.flush(transaction))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` after the reply, keeping a reference until it is done."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def submit(
        self,
        session: Session,
        smtp_envelope: SmtpEnvelope,
        content: bytes,
        transaction: Transaction,
    ) -> str:
        """Decide, record and spool a complete transaction; the reply says whether it is safe
        on disk. Audit records are durable before the reply."""
        started = time.perf_counter()
        reply = await self._submit(session, smtp_envelope, content, transaction)
        SUBMISSIONS.labels(f"{reply[:1]}xx").observe(time.perf_counter() - started)
        return reply

    async def _submit(
        self,
        session: Session,
        smtp_envelope: SmtpEnvelope,
        content: bytes,
        transaction: Transaction,
    ) -> str:
        outcome = await self._checkpoint.message(transaction, content)
        events = [*transaction.pending_audit, *outcome.events]
        transaction.pending_audit = []
        if outcome.refusal is not None:
            failure = await self._checkpoint.record(events, transaction.campaign)
            return str(failure or outcome.refusal)
        if not outcome.copies:
            units = [_Unit(tuple(smtp_envelope.rcpt_tos), outcome.content, events)]
        else:
            # The rewrite stage personalised the message: one queue file per recipient.
            units = [
                _Unit(
                    (copy.recipient,),
                    copy.content,
                    [e for e in events if e.recipient_hash == copy.recipient_hash]
                    + list(copy.events),
                )
                for copy in outcome.copies
            ]
        return await self._spool_units(session, smtp_envelope, transaction, units, outcome.holds)

    async def _spool_units(
        self,
        session: Session,
        smtp_envelope: SmtpEnvelope,
        transaction: Transaction,
        units: list[_Unit],
        holds: Mapping[str, float],
    ) -> str:
        """Sign every unit, write every audit record, then spool every unit; one 250 covers
        them all. When one cannot be spooled, those already written are withdrawn and the
        whole message gets 451: nothing is half-accepted."""
        verp_domain = _verp_domain(transaction)
        address_hashes = {r.address: r.address_hash for r in transaction.recipients}
        prepared: list[tuple[Envelope, bytes, list[AuditEvent]]] = []
        for unit in units:
            try:
                # Signing is the last change to the content (COMPLIANCE §1.5). In the event
                # loop's thread: most of it is dkimpy's Python, which in a worker thread holds
                # the GIL against the event loop (bench/vs_postfix.py: 100 messages/s with a
                # worker thread, 118 without). Even the RSA operation alone in a worker thread,
                # where OpenSSL releases the GIL, loses: 178-186 messages/s against 196-203 (the
                # hop and the GIL hand-back cost more than the 0.8 ms it frees).
                signed = self._signer.sign(unit.content)
            except SigningError as exc:
                refusal = UNSIGNABLE.but(str(exc))
                every = [event for other in units for event in other.events]
                failure = await self._checkpoint.record(
                    _refused(every, reply=str(refusal), detail=str(exc))
                )
                return str(failure or refusal)
            dkim = {
                "dkim": [
                    f"d={by.domain} s={by.selector} a={by.algorithm}" for by in signed.signed_by
                ]
                or signed.unsigned_reason
            }
            envelope = Envelope(
                queue_id=new_queue_id(),
                mail_from=smtp_envelope.mail_from or "",
                recipients=unit.recipients,
                received_at=time.time(),
                smtputf8=smtp_envelope.smtp_utf8,
                client_address=session.peer[0] if session.peer else "",
                client_helo=session.host_name or "",
                auth_user=session.auth_data if session.authenticated else None,
                verp_domain=verp_domain,
                sender_id=transaction.sender.sender_id if transaction.sender else None,
                campaign=transaction.campaign,
                message_class=transaction.message_class,
                not_before={r: holds[r] for r in unit.recipients if r in holds},
            )
            events = [
                event.updated(
                    queue_id=envelope.queue_id,
                    inputs=event.inputs | dkim if event.action == "accept" else event.inputs,
                )
                for event in unit.events
            ]
            if envelope.verp_domain is not None:
                events += _return_path_changes(envelope, events, address_hashes)
            stamped = received_header(session, envelope, self._hostname) + signed.content
            prepared.append((envelope, stamped, events))
        failure = await self._checkpoint.record(
            [event for _, _, events in prepared for event in events]
        )
        if failure is not None:
            return str(failure)
        spooled: list[Envelope] = []
        withdrawn: tuple[Reply, str] | None = None
        for envelope, stamped, _ in prepared:
            try:
                await self._spool.accept(envelope, stamped)
            except SpoolError as exc:
                log.error("%s: not accepted, answered 451: %s", envelope.queue_id, exc)
                withdrawn = replies.SPOOL_FAILURE, f"not spooled: {exc}"
                break
            spooled.append(envelope)
        else:
            uncounted = await self._checkpoint.delivered(
                transaction, [(envelope.queue_id, envelope.recipients) for envelope in spooled]
            )
            if uncounted is not None:
                withdrawn = uncounted, "not counted in the delivery history"
        if withdrawn is not None:
            reply, detail = withdrawn
            for written in spooled:
                await self._spool.withdraw(written.queue_id)
            every = [event for _, _, events in prepared for event in events]
            await self._checkpoint.record(_refused(every, reply=str(reply), detail=detail))
            return str(reply)
        for envelope, stamped, _ in prepared:
            log.info(
                "%s: accepted from=<%s> nrcpt=%d size=%d client=%s%s",
                envelope.queue_id,
                envelope.mail_from,
                len(envelope.recipients),
                len(stamped),
                envelope.client_address,
                f" user={envelope.auth_user}" if envelope.auth_user else "",
            )
            self._on_queued(envelope)
        # The list-health figures are not part of what a 250 promises: counted after the reply.
        self._in_background(
            tally(
                self._stats,
                datetime.now(UTC),
                [
                    Tally(
                        envelope.sender_id,
                        envelope.campaign or "",
                        Kind.ACCEPTED,
                        count,
                        destination=destination,
                    )
                    for envelope in spooled
                    if envelope.sender_id is not None
                    for destination, count in Counter(
                        destination_of(recipient) for recipient in envelope.recipients
                    ).items()
                ],
                [
                    (envelope.queue_id, envelope.campaign)
                    for envelope in spooled
                    if envelope.campaign
                ],
            )
        )
        more = f" and {len(spooled) - 1} more" if len(spooled) > 1 else ""
        return str(replies.QUEUED.but(f"Queued as {spooled[0].queue_id}{more}"))


@dataclass(slots=True)
class _Unit:
    """What becomes one queue file: its recipients, its content and its audit events."""

    recipients: tuple[str, ...]
    content: bytes
    events: list[AuditEvent]


def _verp_domain(transaction: Transaction) -> str | None:
    """The domain of the transaction's VERP return paths: the sender's bounce domain, as
    A-labels so that a return path never needs SMTPUTF8. None for the null reverse path."""
    sender = transaction.sender
    if sender is None or sender.bounce_domain is None or not transaction.mail_from:
        return None
    return sender.bounce_domain.encode("idna").decode("ascii")


def _return_path_changes(
    envelope: Envelope, events: list[AuditEvent], address_hashes: dict[str, str]
) -> list[AuditEvent]:
    """One `fix` record per recipient of `envelope` for its VERP return path, made from the
    recipient's acceptance in `events` (so with its queue id)."""
    assert envelope.verp_domain is not None
    accepted = {event.recipient_hash: event for event in events if event.action == "accept"}
    changes: list[AuditEvent] = []
    for recipient in envelope.recipients:
        _, change = verp_return_path(
            envelope.mail_from, envelope.verp_domain, envelope.queue_id, recipient
        )
        changes.append(change.audit(accepted[address_hashes[recipient]]))
    return changes


def _refused(events: list[AuditEvent], *, reply: str, detail: str) -> list[AuditEvent]:
    """The events with each acceptance turned into a refusal: the message was not kept."""
    return [
        event.updated(action="refuse", reply=reply, detail=detail)
        if event.action == "accept"
        else event
        for event in events
    ]
