"""One SMTP transaction to one host with aiosmtplib, and the reuse of idle connections.

The data goes out with CRLF line endings only and dot-stuffed (RFC 5321 §4.5.2), so nothing
relay emits can end DATA early at the next hop (see `send_data`). aiosmtplib's exceptions stop
here: a transaction returns a DeliveryResult per recipient, or raises TemporaryFailure when the
host could not be used at all (so that the caller tries the next MX).

TLS is opportunistic (RFC 3207) unless the caller names who requires it (`required_by`, see
relay.delivery.tls_policy): then the session must offer STARTTLS and present a certificate valid
for the MX name under [delivery] ca_file, or the host fails with 4.7.10 before MAIL is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass

import aiosmtplib

from relay.config.model import DeliverySettings
from relay.delivery.mx import MailHost
from relay.delivery.tls_policy import TLS_NEEDED, verifying_context
from relay.errors import TemporaryFailure
from relay.spool.records import DeliveryResult, Envelope

__all__ = ["ConnectionPool", "SessionLimits"]

log = logging.getLogger("relay.delivery")

_ENHANCED = re.compile(r"^([245]\.\d{1,3}\.\d{1,3})\b")
_CONNECTION_ERRORS = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPConnectError,
    OSError,
    ssl.SSLError,
)


def _result(code: int, message: str, host: MailHost) -> DeliveryResult:
    match = _ENHANCED.match(message)
    status = match.group(1) if match else f"{str(code)[0]}.0.0"
    text = " ".join(message.split())
    return DeliveryResult(status, f"{code} {text}", remote_mta=host.name)


def _connect_error(exc: BaseException) -> str:
    """Why a connect failed, in words: asyncio names only the errno of a failed connect
    ("[Errno 111] Connect call failed (...)"), and the backoff rules (config/backoff.toml) read
    "Connection refused", "Connection reset by peer", "Network is unreachable"."""
    cause = exc.__cause__ or exc
    if (
        isinstance(cause, OSError)
        and cause.errno
        and str(cause.strerror).startswith("Connect call failed")
    ):
        return os.strerror(cause.errno)
    return str(exc)


def _needs_smtputf8(
    envelope: Envelope, return_path: str, recipients: list[str], content: bytes
) -> bool:
    if not envelope.smtputf8:
        return False
    if not (return_path.isascii() and all(r.isascii() for r in recipients)):
        return True
    header_end = content.find(b"\r\n\r\n")
    return not content[: header_end if header_end >= 0 else len(content)].isascii()


def data_section(content: bytes) -> bytes | None:
    """`content` as DATA sends it, dot-stuffed and ended by <CRLF>.<CRLF>; None unless every line
    of it ends in CRLF (no bare CR or LF to normalise first)."""
    lines = content.count(b"\r\n")
    if content.count(b"\n") != lines or content.count(b"\r") != lines:
        return None
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


async def send_data(client: aiosmtplib.SMTP, content: bytes) -> aiosmtplib.SMTPResponse:
    """DATA with `content`: what aiosmtplib's SMTP.data does, without its two regular
    expressions over the whole message (normalising line endings and dot-stuffing: 1 ms per
    100 KB, an eighth of a node's event loop), which content from relay's spool, CRLF-only
    since ingest, does not need. Content with a bare CR or LF goes through SMTP.data."""
    section = data_section(content)
    if section is None:
        return await client.data(content)
    started = await client.execute_command(b"DATA")
    if started.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(started.code, started.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    try:
        protocol.write(section)
        response = await protocol.read_response(timeout=client.timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
        client.close()  # as SMTP.data: the session is out of step
        raise
    if response.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return response


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """What the destination (relay.delivery.shaping) allows the connections to its hosts."""

    destination: str
    max_open: int  # connections open at once, idle ones included
    messages_per_connection: int
    connect_timeout: float  # seconds
    command_timeout: float


# Idle connections by (destination, address, port, the name their certificate was verified for).
_PoolKey = tuple[str, str, int, str | None]


def _key(destination: str, host: MailHost, required_by: str | None) -> _PoolKey:
    return (destination, host.address, host.port, host.name if required_by is not None else None)


@dataclass(eq=False, slots=True)
class _Connection:
    client: aiosmtplib.SMTP
    destination: str
    sent: int = 0  # transactions over it
    idle_since: float = 0.0
    closed: bool = False


class _StaleConnection(Exception):
    """A reused connection was closed by the server before MAIL; nothing was sent yet."""


class ConnectionPool:
    """Open connections per host, reused for the next transaction while idle; never more open
    to a destination than it allows, nor used for more messages than it allows."""

    def __init__(self, settings: DeliverySettings) -> None:
        self._settings = settings
        self._idle: dict[_PoolKey, list[_Connection]] = defaultdict(list)
        self._open: defaultdict[str, int] = defaultdict(int)
        self._tls = ssl.create_default_context()
        # Opportunistic STARTTLS (RFC 3207): encrypt when offered, without authenticating the
        # server, as MTAs do when neither DANE nor MTA-STS applies.
        self._tls.check_hostname = False
        self._tls.verify_mode = ssl.CERT_NONE
        self._verifying = verifying_context(settings.ca_file)

    async def _connect(
        self, host: MailHost, required_by: str | None, limits: SessionLimits
    ) -> _Connection:
        await self._make_room(limits)
        client = aiosmtplib.SMTP(
            hostname=host.address,
            port=host.port,
            local_hostname=self._settings.helo_name,
            timeout=limits.command_timeout,
            start_tls=None if required_by is None else False,
            tls_context=self._tls,
        )
        connection = _Connection(client, limits.destination)
        self._open[limits.destination] += 1
        try:
            await asyncio.wait_for(client.connect(), timeout=limits.connect_timeout)
        except TimeoutError:
            self._close(connection)
            raise TemporaryFailure("4.4.1", f"connect to {host}: timed out", host.name) from None
        except aiosmtplib.SMTPResponseException as exc:
            self._close(connection)
            raise TemporaryFailure(
                "4.4.1", f"{host} refused the session: {exc.code} {exc.message}", host.name
            ) from None
        except _CONNECTION_ERRORS as exc:
            self._close(connection)
            raise TemporaryFailure(
                "4.4.1", f"connect to {host}: {_connect_error(exc)}", host.name
            ) from None
        if required_by is not None:
            try:
                await self._verified_starttls(client, host, required_by)
            except TemporaryFailure:
                self._close(connection)
                raise
        return connection

    async def _make_room(self, limits: SessionLimits) -> None:
        """Before opening a connection to a full destination, QUIT its longest idle one."""
        if self._open[limits.destination] < limits.max_open:
            return
        idle = [
            (connection.idle_since, key, connection)
            for key, connections in self._idle.items()
            if key[0] == limits.destination
            for connection in connections
        ]
        if idle:
            _, key, oldest = min(idle, key=lambda item: item[0])
            self._idle[key].remove(oldest)
            await self._quit(oldest)

    def _close(self, connection: _Connection) -> None:
        connection.client.close()
        if connection.closed:
            return
        connection.closed = True
        self._open[connection.destination] -= 1
        if not self._open[connection.destination]:
            del self._open[connection.destination]

    async def _quit(self, connection: _Connection) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await asyncio.wait_for(connection.client.quit(), timeout=5)
        self._close(connection)

    async def _verified_starttls(
        self, client: aiosmtplib.SMTP, host: MailHost, required_by: str
    ) -> None:
        """STARTTLS with a certificate valid for the MX name; TemporaryFailure 4.7.10 if not."""
        try:
            await client.ehlo()
            if not client.supports_extension("starttls"):
                raise TemporaryFailure(
                    TLS_NEEDED,
                    f"{host} does not offer STARTTLS, which {required_by} requires",
                    host.name,
                )
            await client.starttls(server_hostname=host.name, tls_context=self._verifying)
        except ssl.SSLCertVerificationError as exc:
            raise TemporaryFailure(
                TLS_NEEDED,
                f"{host}: certificate not valid for {host.name} ({exc.verify_message}),"
                f" which {required_by} requires",
                host.name,
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise TemporaryFailure(
                TLS_NEEDED,
                f"{host} refused STARTTLS ({exc.code} {exc.message}), which {required_by} requires",
                host.name,
            ) from None
        except (*_CONNECTION_ERRORS, aiosmtplib.SMTPException) as exc:
            raise TemporaryFailure(
                TLS_NEEDED, f"{host}: TLS failed ({exc}), which {required_by} requires", host.name
            ) from None

    async def _acquire(
        self, host: MailHost, required_by: str | None, limits: SessionLimits
    ) -> tuple[_Connection, bool]:
        """A connection to host and whether it was reused."""
        idle = self._idle[_key(limits.destination, host, required_by)]
        while idle:
            connection = idle.pop()
            if connection.client.is_connected:
                return connection, True
            self._close(connection)
        return await self._connect(host, required_by, limits), False

    async def _release(
        self,
        host: MailHost,
        required_by: str | None,
        limits: SessionLimits,
        connection: _Connection,
    ) -> None:
        if not connection.client.is_connected:
            self._close(connection)
        elif connection.sent >= limits.messages_per_connection:
            await self._quit(connection)
        else:
            connection.idle_since = time.monotonic()
            self._idle[_key(limits.destination, host, required_by)].append(connection)

    async def close_idle(self, older_than: float = 0.0) -> None:
        """QUIT connections idle for longer than `older_than` seconds."""
        now = time.monotonic()
        closing: list[_Connection] = []
        for key, idle in list(self._idle.items()):
            closing.extend(c for c in idle if now - c.idle_since >= older_than)
            keep = [c for c in idle if now - c.idle_since < older_than]
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        await asyncio.gather(*(self._quit(connection) for connection in closing))

    async def send(
        self,
        host: MailHost,
        envelope: Envelope,
        return_path: str,
        recipients: list[str],
        content: bytes,
        limits: SessionLimits,
        required_by: str | None = None,
    ) -> dict[str, DeliveryResult]:
        """Run one transaction from `return_path`; return a result per recipient. Raises
        TemporaryFailure when the host could not be reached, did not give the TLS that
        `required_by` (if any) demands, or dropped the connection before answering for
        everyone."""
        connection, reused = await self._acquire(host, required_by, limits)
        try:
            try:
                results = await self._transaction(
                    connection.client, host, envelope, return_path, recipients, content
                )
            except _StaleConnection:
                self._close(connection)
                if not reused:
                    raise
                connection = await self._connect(host, required_by, limits)
                results = await self._transaction(
                    connection.client, host, envelope, return_path, recipients, content
                )
        except (_StaleConnection, *_CONNECTION_ERRORS) as exc:
            self._close(connection)
            reason = exc.__cause__ if isinstance(exc, _StaleConnection) else exc
            raise TemporaryFailure(
                "4.4.2", f"{host}: connection lost: {reason}", host.name
            ) from None
        connection.sent += 1
        await self._release(host, required_by, limits, connection)
        return results

    async def _transaction(
        self,
        client: aiosmtplib.SMTP,
        host: MailHost,
        envelope: Envelope,
        return_path: str,
        recipients: list[str],
        content: bytes,
    ) -> dict[str, DeliveryResult]:
        utf8 = _needs_smtputf8(envelope, return_path, recipients, content)
        if utf8 and not client.supports_extension("smtputf8"):
            failure = DeliveryResult(
                "5.6.9",
                f"{host} does not support SMTPUTF8, which this message needs (RFC 6531)",
                host.name,
            )
            return dict.fromkeys(recipients, failure)
        options = []
        if utf8:
            options.append("SMTPUTF8")
        if client.supports_extension("8bitmime") and not content.isascii():
            options.append("BODY=8BITMIME")
        if client.supports_extension("size"):
            options.append(f"SIZE={len(content)}")
        encoding = "utf-8" if utf8 else "ascii"
        try:
            await client.mail(return_path, options=options, encoding=encoding)
        except _CONNECTION_ERRORS as exc:
            raise _StaleConnection from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(client, exc.code)
            return dict.fromkeys(recipients, _result(exc.code, exc.message, host))
        results: dict[str, DeliveryResult] = {}
        accepted: list[str] = []
        for recipient in recipients:
            try:
                await client.rcpt(recipient, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                results[recipient] = _result(exc.code, exc.message, host)
                if exc.code == 421:
                    client.close()
                    return results | dict.fromkeys(
                        [r for r in recipients if r not in results],
                        _result(exc.code, exc.message, host),
                    )
            else:
                accepted.append(recipient)
        if not accepted:
            await self._reset(client, 0)
            return results
        try:
            response = await send_data(client, content)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(client, exc.code)
            return results | dict.fromkeys(accepted, _result(exc.code, exc.message, host))
        return results | dict.fromkeys(accepted, _result(response.code, response.message, host))

    @staticmethod
    async def _reset(client: aiosmtplib.SMTP, code: int) -> None:
        if code == 421:
            client.close()
            return
        try:
            await client.rset()
        except aiosmtplib.SMTPException:
            client.close()
