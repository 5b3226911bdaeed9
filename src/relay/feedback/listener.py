"""The feedback listener (DESIGN §4, `[feedback] listen`): receives bounces at VERP return paths,
mail to the unsubscribe mailbox and complaint reports, and nothing else (550 5.1.1).

The reply path only checks the recipient and writes the message to the inbox (durably, before
the 250); reading it is the processor's job, in the background, so a slow or hostile message
never holds up an answer. The null reverse path, which bounces come from, is accepted.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import Envelope, Session

from relay import replies
from relay.config.model import FeedbackSettings
from relay.errors import SpoolError, StoreUnavailable
from relay.feedback.inbox import Inbox, InboxEnvelope
from relay.feedback.mailboxes import Mailboxes
from relay.ingest.enhanced import EnhancedStatusSMTP

__all__ = ["FeedbackHandler", "FeedbackSession"]

log = logging.getLogger("relay.feedback")

MAX_RECIPIENTS = 100  # per transaction; a bounce has one
STORE_UNAVAILABLE = replies.SPOOL_FAILURE.but("Cannot look up the address now, try again later")


class FeedbackHandler:
    """aiosmtpd handler: RCPT answered from `mailboxes`, DATA written to `inbox`, then
    `on_stored(name)`."""

    def __init__(
        self, inbox: Inbox, mailboxes: Mailboxes, on_stored: Callable[[str], None]
    ) -> None:
        self._inbox = inbox
        self._mailboxes = mailboxes
        self._on_stored = on_stored

    async def handle_RCPT(
        self,
        server: Any,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if rcpt_options:
            return str(replies.PARAMETER_NOT_IMPLEMENTED)
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return str(replies.TOO_MANY_RECIPIENTS)
        try:
            found = await self._mailboxes.find(address)
        except StoreUnavailable as exc:
            log.error("feedback: RCPT <%s> answered 451: %s", address, exc)
            return str(STORE_UNAVAILABLE)
        if found is None:
            return str(replies.UNKNOWN_MAILBOX.but(f"No such mailbox here: <{address}>"))
        envelope.rcpt_tos.append(address)
        return str(replies.RECIPIENT_OK)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        client = session.peer[0] if session.peer else ""
        received = InboxEnvelope(
            mail_from="" if envelope.mail_from == "<>" else envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            received_at=time.time(),
            client=client,
        )
        assert isinstance(envelope.original_content, bytes)
        try:
            name = await self._inbox.store(received, envelope.original_content)
        except SpoolError as exc:
            log.error("feedback: message from %s not accepted, answered 451: %s", client, exc)
            return str(replies.SPOOL_FAILURE)
        log.info(
            "feedback %s: received from=<%s> to=%s size=%d client=%s",
            name,
            received.mail_from,
            ",".join(f"<{rcpt}>" for rcpt in received.recipients),
            len(envelope.original_content),
            client,
        )
        self._on_stored(name)
        return str(replies.QUEUED.but(f"Queued as {name}"))


class FeedbackSession(EnhancedStatusSMTP):
    """One connection to the feedback listener: plain aiosmtpd, which reads DATA with a
    bounded buffer and answers 552 past `max_message_size`."""

    # Bounces quote what they bounce; a long line is no reason to refuse one.
    line_length_limit = 64 * 1024

    def __init__(
        self,
        handler: FeedbackHandler,
        settings: FeedbackSettings,
        hostname: str,
        timeout: float,
        tls_context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(
            handler,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="relay feedback ESMTP ready",
            tls_context=tls_context,
            timeout=timeout,
        )
