"""The feedback processor: reads each message of the inbox in the background and turns it into
suppressions, under the policy of `[feedback]`:

    bounce (at a VERP return path)   hard -> suppress the recipient for the bounce domain's
                                     sender; soft -> kept, and `soft_bounce_limit` of them
                                     within `soft_bounce_window` suppress
    complaint report (any address    a feedback type in `complaint_types` counts towards the
    when parse() recognises it)      sender's complaint rate and suppresses the recipient

Bounces, complaints and new unsubscribes are also counted in the list-health figures
(relay.stores.stats), under the campaign of the queue entry a VERP address names.
    unsubscribe mailbox              the token in the Subject, as a one-click POST would

The VERP address a bounce came to names queue entry and recipient, and wins over what the bounce
body claims. A complaint's sender is found from the reported message: its VERP Return-Path,
else the DKIM d= or From domain of a sender profile.

A message is removed from the inbox only after its suppressions and audit records are written;
when the stores or the audit log cannot be written it stays and is tried again. A message that
yields nothing to act on is moved to unparsed/ with a log line saying why; the processor never
stops on a bad message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message

from relay.audit.log import AuditLog
from relay.config.model import FeedbackSettings
from relay.errors import AuditError, SpoolError, StoreUnavailable
from relay.feedback.bounces import classify
from relay.feedback.complaints import parse, reported_headers
from relay.feedback.inbox import Inbox, InboxEnvelope
from relay.feedback.mailboxes import Mailbox, Mailboxes
from relay.feedback.model import BounceCategory, BounceRecord, ComplaintRecord
from relay.feedback.suppress import suppress, suppression, unsubscribe_suppression
from relay.message_parsing import parse_message
from relay.rewrite.unsubscribe import UnsubscribeTokens, find_token
from relay.rewrite.verp import VerpAddress, parse_verp, verp_tag
from relay.stores.base import Stores
from relay.stores.models import SenderProfile, SoftBounce, SuppressionReason
from relay.stores.stats import Kind, Tally, tally

__all__ = ["FeedbackProcessor"]

log = logging.getLogger("relay.feedback")

RETRY_AFTER = 60.0  # seconds, when the stores or the audit log cannot be written
# Soft bounces that say something about the recipient's mailbox count towards suppressing it;
# those caused by the sender (blocked, spam, rate, size) do not.
_SOFT_COUNTED = frozenset(
    {
        BounceCategory.USER_UNKNOWN,
        BounceCategory.HOST_UNKNOWN,
        BounceCategory.MAILBOX_FULL,
        BounceCategory.MAILBOX_DISABLED,
        BounceCategory.EXPIRED,
        BounceCategory.TRANSIENT,
        BounceCategory.UNKNOWN,
    }
)
_DKIM_DOMAIN = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Message:
    """One inbox message being processed."""

    name: str
    envelope: InboxEnvelope
    raw: bytes
    at: datetime


class _Unusable(Exception):
    """The message cannot be acted on; it goes to unparsed/ with this explanation."""


class FeedbackProcessor:
    """Drains the inbox one message at a time, in one background task."""

    def __init__(
        self,
        inbox: Inbox,
        mailboxes: Mailboxes,
        stores: Stores,
        audit: AuditLog,
        tokens: UnsubscribeTokens,
        settings: FeedbackSettings,
        hash_address: Callable[[str], str],
        keep_addresses: bool,
    ) -> None:
        self._inbox = inbox
        self._mailboxes = mailboxes
        self._stores = stores
        self._audit = audit
        self._tokens = tokens
        self._settings = settings
        self._hash = hash_address
        self._keep_addresses = keep_addresses
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    def submit(self, name: str) -> None:
        """A message was just stored in the inbox: process it soon."""
        self._queue.put_nowait(name)

    async def start(self, leftovers: list[str]) -> None:
        """Process `leftovers` (messages a stop or crash left in the inbox), then new ones."""
        for name in leftovers:
            log.info("feedback %s: left unprocessed by the last run; processing it now", name)
            self.submit(name)
        self._runner = asyncio.create_task(self._run(), name="feedback-processor")

    async def stop(self) -> None:
        """Stop between messages; what is left stays in the inbox for the next start."""
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    async def _run(self) -> None:
        while True:
            name = await self._queue.get()
            await self._process(name)

    async def _process(self, name: str) -> None:
        """Act on one inbox message, then remove it or set it aside."""
        try:
            envelope, raw = await self._inbox.load(name)
            await self._act(_Message(name, envelope, raw, datetime.now(UTC)))
        except (AuditError, StoreUnavailable) as exc:
            log.error(
                "feedback %s: not recorded, kept in the inbox and retried in %.0fs: %s",
                name,
                RETRY_AFTER,
                exc,
            )
            asyncio.get_running_loop().call_later(RETRY_AFTER, self.submit, name)
            return
        except (_Unusable, SpoolError) as exc:
            await self._set_aside(name, str(exc))
            return
        except Exception as exc:  # a parser bug must not stop the processor or lose the mail
            log.exception("feedback %s: unexpected error while reading it", name)
            await self._set_aside(name, f"unexpected error: {exc!r}")
            return
        await self._inbox.remove(name)

    async def _set_aside(self, name: str, why: str) -> None:
        try:
            where = await self._inbox.set_aside(name)
        except OSError as exc:
            log.error("feedback %s: %s; could not be moved to unparsed/ either: %s", name, why, exc)
            return
        log.warning(
            "feedback %s: nothing recorded: %s; kept as %s for an operator (fix the cause, then"
            " move it back to %s to process it again)",
            name,
            why,
            where,
            self._inbox.new_dir,
        )

    async def _act(self, message: _Message) -> None:
        complaints = await asyncio.to_thread(parse, message.raw)
        if complaints:
            await self._complaints(message, complaints)
            return
        for recipient in message.envelope.recipients:
            found = await self._mailboxes.find(recipient)
            if found is None:
                raise _Unusable(f"<{recipient}> is no longer a feedback address")
            if found.mailbox is Mailbox.BOUNCE:
                assert found.sender is not None
                await self._bounce(message, recipient, found.sender)
            elif found.mailbox is Mailbox.UNSUBSCRIBE:
                await self._unsubscribe(message)
            else:
                raise _Unusable(f"sent to <{recipient}> but not a complaint report relay can read")

    # -- bounces ---------------------------------------------------------------------------

    async def _bounce(self, message: _Message, address: str, sender: SenderProfile) -> None:
        records = await asyncio.to_thread(classify, message.raw, address)
        if not records:
            raise _Unusable(f"sent to <{address}> but not a bounce relay can read")
        verp = parse_verp(address)
        assert verp is not None
        bounces: list[Kind] = []
        for record in records:
            if not record.is_failure:
                log.info(
                    "feedback %s: %s (%s), not a failure: nothing to do",
                    message.name,
                    record.reason,
                    record.recipient,
                )
                continue
            recipient = record.recipient
            if recipient is None:
                raise _Unusable(f"the bounce to <{address}> names no recipient")
            if verp.tag is not None and verp_tag(verp.queue_id, recipient) != verp.tag:
                raise _Unusable(
                    f"the bounce names <{recipient}>, not the recipient <{address}> was made for"
                )
            if record.hard:
                await self._suppress_bounce(
                    message, record, recipient, sender, SuppressionReason.HARD_BOUNCE
                )
            elif record.category in _SOFT_COUNTED:
                await self._soft_bounce(message, record, recipient, sender)
            else:
                log.info(
                    "feedback %s: soft bounce of <%s> (%s) caused by the sender, not counted"
                    " towards suppressing the recipient",
                    message.name,
                    recipient,
                    record.reason,
                )
            bounces.append(Kind.HARD_BOUNCE if record.hard else Kind.SOFT_BOUNCE)
        campaign = await self._stores.stats.campaign_of(verp.queue_id)
        await tally(
            self._stores.stats,
            message.at,
            [Tally(sender.sender_id, campaign, kind, n) for kind, n in Counter(bounces).items()],
        )

    async def _soft_bounce(
        self, message: _Message, record: BounceRecord, recipient: str, sender: SenderProfile
    ) -> None:
        limit, window = self._settings.soft_bounce_limit, self._settings.soft_bounce_window
        bounce = SoftBounce(
            address_hash=self._hash(recipient),
            sender_id=sender.sender_id,
            at=message.at,
            status=record.status,
            reason=record.reason,
            source=message.name,
        )
        count = await self._stores.add_soft_bounce(bounce, message.at - window)
        log.info(
            "feedback %s: soft bounce %d of %d within %s for <%s> of sender %s (%s %s)",
            message.name,
            count,
            limit,
            window,
            recipient,
            sender.sender_id,
            record.status,
            record.reason,
        )
        if count >= limit:
            await self._suppress_bounce(
                message, record, recipient, sender, SuppressionReason.SOFT_BOUNCES, count
            )

    async def _suppress_bounce(
        self,
        message: _Message,
        record: BounceRecord,
        recipient: str,
        sender: SenderProfile,
        reason: SuppressionReason,
        soft_bounces: int | None = None,
    ) -> None:
        what = (
            "hard bounce"
            if soft_bounces is None
            else f"{soft_bounces} soft bounces within {self._settings.soft_bounce_window}"
        )
        inputs: dict[str, object] = {
            "file": message.name,
            "bounce_reason": record.reason,
            "category": record.category.value,
            "status": record.status,
            "replycode": record.replycode,
            "diagnostic": record.diagnostic,
            "client": message.envelope.client,
        }
        if soft_bounces is not None:
            inputs["soft_bounces"] = soft_bounces
        entry, event = suppression(
            address_hash=self._hash(recipient),
            address=self._clear(recipient),
            sender_id=sender.sender_id,
            reason=reason,
            source="bounce",
            at=message.at,
            stage="feedback",
            detail=f"{what} ({record.status} {record.reason}): suppress all mail of sender"
            f" {sender.sender_id!r}",
            inputs=inputs,
            source_message_id=record.original_message_id,
            queue_id=record.queue_id,
        )
        await suppress(self._stores, self._audit, entry, event)
        log.info("feedback %s: <%s> suppressed: %s", message.name, recipient, event.detail)

    # -- complaint reports -----------------------------------------------------------------

    async def _complaints(self, message: _Message, records: list[ComplaintRecord]) -> None:
        headers = await asyncio.to_thread(reported_headers, message.raw)
        sender, verp = await self._reported_sender(headers, records[0])
        if sender is None:
            raise _Unusable(
                "complaint report about a message of no known sender (no VERP Return-Path,"
                " no DKIM d= or From domain of a sender profile)"
            )
        campaign = await self._stores.stats.campaign_of(verp.queue_id) if verp else ""
        complaint = Tally(sender.sender_id, campaign, Kind.COMPLAINT)
        for record in records:
            if record.feedback_type not in self._settings.complaint_types:
                log.info(
                    "feedback %s: %s report about sender %s: not a complaint type"
                    " ([feedback] complaint_types), nothing to do",
                    message.name,
                    record.feedback_type,
                    sender.sender_id,
                )
                continue
            await tally(self._stores.stats, message.at, [complaint])
            recipient = (verp.recipient if verp else None) or record.original_recipient
            if recipient is None:
                raise _Unusable(
                    f"{record.feedback_type} report about sender {sender.sender_id!r} names no"
                    " recipient (counted towards the complaint rate)"
                )
            entry, event = suppression(
                address_hash=self._hash(recipient),
                address=self._clear(recipient),
                sender_id=sender.sender_id,
                reason=SuppressionReason.COMPLAINT_ARF,
                source="complaint",
                at=message.at,
                stage="feedback",
                detail=f"{record.feedback_type} complaint: suppress all mail of sender"
                f" {sender.sender_id!r}",
                inputs={
                    "file": message.name,
                    "feedback_type": record.feedback_type,
                    "source_ip": record.source_ip,
                    "reported_domain": record.reported_domain,
                    "user_agent": record.fields.get("user_agent"),
                    "client": message.envelope.client,
                },
                source_message_id=record.original_message_id,
            )
            await suppress(self._stores, self._audit, entry, event)
            log.info("feedback %s: <%s> suppressed: %s", message.name, recipient, event.detail)

    async def _reported_sender(
        self, headers: Message | None, record: ComplaintRecord
    ) -> tuple[SenderProfile | None, VerpAddress | None]:
        """The sender of the reported message, and what its VERP return path names."""
        return_paths = [record.fields.get("original_mail_from")]
        if headers is not None:
            return_paths.insert(0, headers.get("return-path"))
        for return_path in return_paths:
            verp = parse_verp(str(return_path)) if return_path else None
            if verp is None:
                continue
            domain = str(return_path).strip().strip("<>").rpartition("@")[2]
            sender = await self._stores.sender_for_bounce_domain(domain)
            if sender is not None:
                return sender, verp
        if headers is None:
            return None, None
        domains = [
            match.group(1).rstrip(".")
            for signature in headers.get_all("dkim-signature", [])
            for match in [_DKIM_DOMAIN.search(str(signature))]
            if match
        ]
        from_domain = str(headers.get("from", "")).strip().strip(">").rpartition("@")[2]
        for domain in [*domains, from_domain]:
            if domain:
                sender = await self._stores.sender_for_domain(domain)
                if sender is not None:
                    return sender, None
        return None, None

    # -- the unsubscribe mailbox -----------------------------------------------------------

    async def _unsubscribe(self, message: _Message) -> None:
        headers = parse_message(message.raw, headers_only=True)
        subject = str(headers.get("subject", ""))
        token = find_token(subject)
        claims = self._tokens.read(token) if token is not None else None
        if claims is None:
            raise _Unusable(f"mail to the unsubscribe mailbox without a valid token: {subject!r}")
        entry, event = unsubscribe_suppression(
            claims,
            reason=SuppressionReason.UNSUBSCRIBE_MAILTO,
            source="mailto",
            how="mailto unsubscribe (RFC 2369)",
            at=message.at,
            inputs={
                "file": message.name,
                "request_message_id": str(headers.get("message-id", "")) or None,
                "client": message.envelope.client,
            },
        )
        await suppress(self._stores, self._audit, entry, event, Kind.UNSUBSCRIBE)
        log.info("feedback %s: %s", message.name, event.detail)

    def _clear(self, address: str) -> str | None:
        return address if self._keep_addresses else None
