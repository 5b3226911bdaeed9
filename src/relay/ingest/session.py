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
from typing import Any

from aiosmtpd.smtp import SMTP

from relay import replies
from relay.config.model import SmtpSettings
from relay.ingest.addresses import AddressError, ParsedPath, parse_parameters, parse_path
from relay.ingest.enhanced import EnhancedStatusSMTP
from relay.ingest.handler import SubmissionHandler
from relay.policy.checkpoint import Transaction

__all__ = ["SubmissionSession"]

log = logging.getLogger("relay.ingest")

_DOT_LINE = b".\r\n"
_DATA_END = b"\r\n.\r\n"
_MAX_LINE = 998


class SubmissionSession(EnhancedStatusSMTP):
    """One client connection to the submission listener."""

    # aiosmtpd sizes its StreamReader buffer limit with this; command lines stay limited by
    # command_size_limit, and DATA lines by _MAX_LINE below.
    line_length_limit = 64 * 1024

    def __init__(
        self,
        handler: SubmissionHandler,
        settings: SmtpSettings,
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
        self._handler = handler
        self._transaction: Transaction | None = None
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

    def connection_lost(self, error: Exception | None) -> None:
        self._abandon_transaction()
        super().connection_lost(error)

    def _set_rset_state(self) -> None:
        # RSET, HELO/EHLO and STARTTLS end a transaction without a message.
        self._abandon_transaction()
        super()._set_rset_state()

    def _abandon_transaction(self) -> None:
        if getattr(self, "_transaction", None) is not None:
            assert self._transaction is not None
            self._handler.abandon(self._transaction)
            self._transaction = None

    # -- transaction ------------------------------------------------------------------------

    def _transaction_refusal(self) -> replies.Reply | None:
        assert self.session is not None
        if not self.session.host_name:
            return replies.BAD_SEQUENCE.but("Send EHLO or HELO first")
        if not (self._trusted or self.session.authenticated):
            return replies.AUTH_REQUIRED
        return None

    def _path(
        self, keyword: str, arg: str | None, *, allow_null: bool
    ) -> tuple[ParsedPath, dict[str, str | None]] | replies.Reply:
        """The address and ESMTP parameters after MAIL FROM: / RCPT TO:, or the refusal."""
        argument = self._strip_command_keyword(keyword, arg or "")
        if argument is None:
            return replies.SYNTAX_ERROR.but(f"Syntax: {keyword}<address> [parameters]")
        try:
            path = parse_path(argument, allow_null=allow_null, utf8=True)
            parameters = parse_parameters(path.parameters)
        except AddressError as exc:
            reply = replies.ADDRESS_TOO_LONG if exc.too_long else replies.BAD_ADDRESS_SYNTAX
            return reply.but(f"{reply.text}: {exc}")
        assert self.session is not None
        if parameters and not self.session.extended_smtp:
            return replies.PARAMETER_NOT_IMPLEMENTED.but("Parameters need EHLO")
        return path, parameters

    async def smtp_MAIL(self, arg: str | None) -> None:
        reply = self._mail(arg)
        if reply is replies.SENDER_OK:
            assert self.session is not None
            assert self.envelope is not None
            opened = await self._handler.open_transaction(
                self.session, self.envelope, self._trusted
            )
            if isinstance(opened, replies.Reply):
                self.envelope.mail_from = None
                reply = opened
            else:
                self._transaction = opened
        await self.push(str(reply))

    def _mail(self, arg: str | None) -> replies.Reply:
        refusal = self._transaction_refusal()
        if refusal is not None:
            return refusal
        assert self.envelope is not None
        if self.envelope.mail_from is not None:
            return replies.BAD_SEQUENCE.but("Sender already given")
        parsed = self._path("FROM:", arg, allow_null=True)
        if isinstance(parsed, replies.Reply):
            return parsed
        path, parameters = parsed
        smtputf8 = "SMTPUTF8" in parameters
        if parameters.pop("SMTPUTF8", None) is not None:
            return replies.SYNTAX_ERROR.but("SMTPUTF8 takes no value")
        if path.non_ascii and not smtputf8:
            return replies.UTF8_SENDER_WITHOUT_SMTPUTF8
        size = parameters.pop("SIZE", None)
        if size is not None and not size.isdigit():
            return replies.SYNTAX_ERROR.but("SIZE must be a number")
        if size is not None and int(size) > self._settings.max_message_size:
            return self._too_big()
        body = parameters.pop("BODY", None)
        if body is not None and body.upper() not in ("7BIT", "8BITMIME"):
            return replies.SYNTAX_ERROR.but("BODY must be 7BIT or 8BITMIME")
        if parameters:
            return self._unsupported(parameters)
        self.envelope.mail_from = path.address
        self.envelope.smtp_utf8 = smtputf8
        return replies.SENDER_OK

    async def smtp_RCPT(self, arg: str | None) -> None:
        checked = self._rcpt(arg)
        if isinstance(checked, replies.Reply):
            await self.push(str(checked))
            return
        assert self.envelope is not None
        assert self._transaction is not None
        reply = replies.RECIPIENT_OK
        if checked.address not in self.envelope.rcpt_tos:
            reply = await self._handler.recipient(self._transaction, checked.address)
            if reply is replies.RECIPIENT_OK:
                self.envelope.rcpt_tos.append(checked.address)
        await self.push(str(reply))

    def _rcpt(self, arg: str | None) -> replies.Reply | ParsedPath:
        """The recipient's path when it may be offered to the policy stage, else the refusal."""
        refusal = self._transaction_refusal()
        if refusal is not None:
            return refusal
        assert self.envelope is not None
        if self.envelope.mail_from is None:
            return replies.BAD_SEQUENCE.but("Need MAIL before RCPT")
        parsed = self._path("TO:", arg, allow_null=False)
        if isinstance(parsed, replies.Reply):
            return parsed
        path, parameters = parsed
        if path.non_ascii and not self.envelope.smtp_utf8:
            return replies.UTF8_RECIPIENT_WITHOUT_SMTPUTF8
        if parameters:
            return self._unsupported(parameters)
        if len(self.envelope.rcpt_tos) >= self._settings.max_recipients:
            return replies.TOO_MANY_RECIPIENTS
        return path

    async def smtp_DATA(self, arg: str | None) -> None:
        assert self.session is not None
        assert self.envelope is not None
        refusal = self._transaction_refusal()
        if refusal is None and not self.envelope.rcpt_tos:
            refusal = replies.BAD_SEQUENCE.but("Need RCPT before DATA")
        if refusal is None and arg:
            refusal = replies.SYNTAX_ERROR.but("Syntax: DATA")
        if refusal is not None:
            await self.push(str(refusal))
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, data_refusal = await self._read_data()
        envelope, self.envelope = self.envelope, self._create_envelope()
        transaction, self._transaction = self._transaction, None
        assert transaction is not None
        if data_refusal is not None:
            self._handler.abandon(transaction)
            log.warning(
                "refused DATA from %s (%s): %s",
                self.session.peer[0] if self.session.peer else "unknown",
                envelope.mail_from,
                data_refusal,
            )
            await self.push(str(data_refusal))
            return
        await self.push(await self._handler.submit(self.session, envelope, content, transaction))

    async def _read_data(self) -> tuple[bytes, replies.Reply | None]:
        """Read up to <CRLF>.<CRLF>; return (dot-unstuffed content, refusal or None).

        The data is read in large pieces ending at ".<CRLF>"; a piece ends the data only when
        that dot starts a line, i.e. follows CRLF (or nothing). Past max_message_size the rest
        is read and discarded, so memory stays bounded whatever the client sends.
        """
        limit = self._settings.max_message_size
        data = bytearray()
        total = 0
        too_big = False
        while True:
            try:
                piece = await self._reader.readuntil(_DOT_LINE)
                candidate = True
            except asyncio.LimitOverrunError as overrun:
                piece = await self._reader.read(overrun.consumed)
                candidate = False
            total += len(piece)
            data += piece
            if len(data) > limit + len(_DATA_END):
                too_big = True
                del data[: -len(_DATA_END)]
            if candidate and (total == len(_DOT_LINE) or data[-5:-3] == b"\r\n"):
                break
        if too_big or total - len(_DOT_LINE) > limit:
            return b"", self._too_big()
        del data[-len(_DOT_LINE) :]
        return self._check_data(bytes(data), refuse_long_lines=self._handler.refuses_long_lines)

    @staticmethod
    def _check_data(data: bytes, *, refuse_long_lines: bool) -> tuple[bytes, replies.Reply | None]:
        if b"\0" in data:
            return b"", replies.NUL_IN_DATA
        line_ends = data.count(b"\r\n")
        if data.count(b"\r") != line_ends or data.count(b"\n") != line_ends:
            return b"", replies.BARE_LINE_ENDING
        # RFC 5321 §4.5.2: remove the first dot of every line that starts with one.
        content = (b"\r\n" + data).replace(b"\r\n.", b"\r\n")[2:]
        if refuse_long_lines and max(map(len, content.split(b"\r\n"))) > _MAX_LINE:
            return b"", replies.LINE_TOO_LONG
        return content, None

    def _too_big(self) -> replies.Reply:
        limit = self._settings.max_message_size
        return replies.MESSAGE_TOO_BIG.but(f"Message size exceeds fixed limit of {limit} bytes")

    @staticmethod
    def _unsupported(parameters: dict[str, str | None]) -> replies.Reply:
        return replies.PARAMETER_NOT_IMPLEMENTED.but(
            f"Unsupported: {', '.join(sorted(parameters))}"
        )
