"""The submission SMTP session: aiosmtpd's protocol machine with relay's own MAIL, RCPT and DATA.

aiosmtpd handles the connection, EHLO, STARTTLS (>= 1.4.6 discards plaintext pipelined after
STARTTLS) and AUTH. relay takes over the transaction commands so that every reply carries a
precise enhanced status code and DATA is read strictly: only <CRLF>.<CRLF> ends it, and bare CR,
bare LF or NUL anywhere in the data refuses the message (SMTP smuggling, COMPLIANCE §13).
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay import replies
from relay.config.model import SmtpSettings
from relay.ingest.addresses import AddressError, parse_parameters, parse_path

__all__ = ["Submission", "SubmissionSession"]

log = logging.getLogger("relay.ingest")

Submission = Callable[[Session, Envelope, bytes], Awaitable[str]]

_DATA_END = b".\r\n"
_MAX_LINE = 998 + 2


class SubmissionSession(SMTP):
    """One client connection to the submission listener."""

    def __init__(
        self,
        handler: Any,
        settings: SmtpSettings,
        submit: Submission,
        tls_context: ssl.SSLContext | None,
        authenticator: Any,
    ) -> None:
        super().__init__(
            handler,
            data_size_limit=settings.max_message_size,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.hostname,
            ident="relay ESMTP ready",
            tls_context=tls_context,
            timeout=settings.timeout.total_seconds(),
            auth_require_tls=True,
            authenticator=authenticator,
        )
        # aiosmtpd keeps these limits on the class; give each session its own.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        self._settings = settings
        self._submit = submit
        self._answering_hello = False
        self._trusted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.session is not None
        if self.session.peer and not self._trusted:
            self._trusted = self._is_trusted(self.session.peer[0])

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self._settings.trusted_networks)

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str) and not self._answering_hello:
            status = replies.with_enhanced_code(status)
        await super().push(status)

    # RFC 2034 §3: replies to HELO and EHLO carry no enhanced status code.
    async def smtp_EHLO(self, hostname: str) -> None:
        self._answering_hello = True
        try:
            await super().smtp_EHLO(hostname)
        finally:
            self._answering_hello = False

    async def smtp_HELO(self, hostname: str) -> None:
        self._answering_hello = True
        try:
            await super().smtp_HELO(hostname)
        finally:
            self._answering_hello = False

    # -- transaction ------------------------------------------------------------------------

    async def _refuse_before_transaction(self) -> bool:
        assert self.session is not None
        if not self.session.host_name:
            await self.push(str(replies.BAD_SEQUENCE.but("Send EHLO or HELO first")))
            return True
        if not (self._trusted or self.session.authenticated):
            await self.push(str(replies.AUTH_REQUIRED))
            return True
        return False

    async def smtp_MAIL(self, arg: str | None) -> None:
        if await self._refuse_before_transaction():
            return
        assert self.session is not None
        assert self.envelope is not None
        if self.envelope.mail_from is not None:
            await self.push(str(replies.BAD_SEQUENCE.but("Sender already given")))
            return
        argument = self._strip_command_keyword("FROM:", arg or "")
        if argument is None:
            await self.push(str(replies.SYNTAX_ERROR.but("Syntax: MAIL FROM:<address>")))
            return
        try:
            path = parse_path(argument, allow_null=True, utf8=True)
            parameters = parse_parameters(path.parameters)
        except AddressError as exc:
            await self.push(str(self._address_reply(exc)))
            return
        if parameters and not self.session.extended_smtp:
            await self.push(str(replies.PARAMETER_NOT_IMPLEMENTED.but("Parameters need EHLO")))
            return
        smtputf8 = "SMTPUTF8" in parameters
        if parameters.pop("SMTPUTF8", None) is not None:
            await self.push(str(replies.SYNTAX_ERROR.but("SMTPUTF8 takes no value")))
            return
        if path.non_ascii and not smtputf8:
            await self.push(str(replies.UTF8_SENDER_WITHOUT_SMTPUTF8))
            return
        size = parameters.pop("SIZE", None)
        if size is not None:
            if not size.isdigit():
                await self.push(str(replies.SYNTAX_ERROR.but("SIZE must be a number")))
                return
            if int(size) > self._settings.max_message_size:
                await self.push(self._too_big())
                return
        body = parameters.pop("BODY", None)
        if body is not None and body.upper() not in ("7BIT", "8BITMIME"):
            await self.push(str(replies.SYNTAX_ERROR.but("BODY must be 7BIT or 8BITMIME")))
            return
        if parameters:
            unknown = ", ".join(sorted(parameters))
            await self.push(str(replies.PARAMETER_NOT_IMPLEMENTED.but(f"Unsupported: {unknown}")))
            return
        self.envelope.mail_from = path.address
        self.envelope.smtp_utf8 = smtputf8
        await self.push(str(replies.SENDER_OK))

    async def smtp_RCPT(self, arg: str | None) -> None:
        if await self._refuse_before_transaction():
            return
        assert self.envelope is not None
        if self.envelope.mail_from is None:
            await self.push(str(replies.BAD_SEQUENCE.but("Need MAIL before RCPT")))
            return
        argument = self._strip_command_keyword("TO:", arg or "")
        if argument is None:
            await self.push(str(replies.SYNTAX_ERROR.but("Syntax: RCPT TO:<address>")))
            return
        try:
            path = parse_path(argument, allow_null=False, utf8=True)
            parameters = parse_parameters(path.parameters)
        except AddressError as exc:
            await self.push(str(self._address_reply(exc)))
            return
        if path.non_ascii and not self.envelope.smtp_utf8:
            await self.push(str(replies.UTF8_RECIPIENT_WITHOUT_SMTPUTF8))
            return
        if parameters:
            unknown = ", ".join(sorted(parameters))
            await self.push(str(replies.PARAMETER_NOT_IMPLEMENTED.but(f"Unsupported: {unknown}")))
            return
        if len(self.envelope.rcpt_tos) >= self._settings.max_recipients:
            await self.push(str(replies.TOO_MANY_RECIPIENTS))
            return
        if path.address not in self.envelope.rcpt_tos:
            self.envelope.rcpt_tos.append(path.address)
        await self.push(str(replies.RECIPIENT_OK))

    async def smtp_DATA(self, arg: str | None) -> None:
        if await self._refuse_before_transaction():
            return
        assert self.session is not None
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push(str(replies.BAD_SEQUENCE.but("Need RCPT before DATA")))
            return
        if arg:
            await self.push(str(replies.SYNTAX_ERROR.but("Syntax: DATA")))
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, refusal = await self._read_data()
        envelope, self.envelope = self.envelope, self._create_envelope()
        if refusal is not None:
            log.warning(
                "refused DATA from %s (%s): %s", self.session.peer[0], envelope.mail_from, refusal
            )
            await self.push(refusal)
            return
        await self.push(await self._submit(self.session, envelope, content))

    async def _read_data(self) -> tuple[bytes, str | None]:
        """Read up to the end-of-data line; return (unstuffed content, refusal reply or None).

        Once the message is refused, the rest is read and discarded, so memory stays bounded
        by max_message_size even for a single endless line.
        """
        limit = self._settings.max_message_size
        lines: list[bytes] = []
        fragments: list[bytes] = []
        mid_line = False
        size = 0
        refusal: str | None = None
        while True:
            try:
                chunk = await self._reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError as overrun:
                part = await self._reader.read(overrun.consumed)
                size += len(part)
                mid_line = True
                if refusal is None and size > limit:
                    refusal = self._too_big()
                if refusal is None:
                    fragments.append(part)
                continue
            if not mid_line and chunk == _DATA_END:
                break
            size += len(chunk)
            mid_line = False
            if fragments:
                fragments.append(chunk)
                chunk = b"".join(fragments)
                fragments.clear()
            if refusal is not None:
                continue
            if size > limit:
                refusal = self._too_big()
            elif b"\0" in chunk:
                refusal = str(replies.NUL_IN_DATA)
            elif chunk.find(b"\n", 0, -2) >= 0 or chunk.find(b"\r", 0, -2) >= 0:
                refusal = str(replies.BARE_LINE_ENDING)
            else:
                line = chunk[1:] if chunk[:1] == b"." else chunk
                if len(line) <= _MAX_LINE:
                    lines.append(line)
                    continue
                refusal = str(replies.LINE_TOO_LONG)
            lines.clear()
            fragments.clear()
        return b"".join(lines), refusal

    def _too_big(self) -> str:
        limit = self._settings.max_message_size
        return str(replies.MESSAGE_TOO_BIG).format(limit=limit)

    @staticmethod
    def _address_reply(error: AddressError) -> replies.Reply:
        reply = replies.ADDRESS_TOO_LONG if error.too_long else replies.BAD_ADDRESS_SYNTAX
        return reply.but(f"{reply.text}: {error}")
