"""A destination MX: a real aiosmtpd server that records what it receives.

Replies can be scripted per recipient (`rcpt_replies`), for the DATA command itself
(`data_command_replies`, instead of 354) or for the data (`data_replies`); each scripted reply is
used once, in order, then the sink accepts. A handler of its own (a subclass of
SinkHandler, see tests/support/shaping_sinks.py) can also watch connections come and go.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.support.network import free_port


@dataclass
class SinkMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    tls: bool
    peer: tuple[str, int]  # the client's end of the connection the message came over


@dataclass
class SinkHandler:
    messages: list[SinkMessage] = field(default_factory=list)
    rcpt_replies: defaultdict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    data_command_replies: deque[str] = field(default_factory=deque)
    data_replies: deque[str] = field(default_factory=deque)
    received: threading.Condition = field(default_factory=threading.Condition)

    def connection_made(self, server: Any) -> None:
        """A client connected to `server`, the aiosmtpd server of this one connection (called
        in the sink's event loop, like the handle_* hooks, which get it as their first
        argument)."""

    def connection_lost(self, server: Any) -> None:
        """The connection of `server` closed, whoever closed it."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        scripted = self.rcpt_replies.get(address)
        if scripted:
            return scripted.popleft()
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        with self.received:
            self.messages.append(
                SinkMessage(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.original_content,
                    list(envelope.mail_options),
                    session.ssl is not None,
                    tuple(session.peer),
                )
            )
            self.received.notify_all()
        return "250 2.0.0 OK: queued by sink"


class _SinkSMTP(SMTP):
    """aiosmtpd's server, telling the handler of each connection's start and end."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self._original_transport is None:  # not the TLS layer of a STARTTLS
            self.event_handler.connection_made(self)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self.event_handler.connection_lost(self)

    async def smtp_DATA(self, arg: str) -> None:
        scripted = self.event_handler.data_command_replies
        if scripted and self.envelope.rcpt_tos:
            await self.push(scripted.popleft())
            return
        await super().smtp_DATA(arg)


class _SinkController(Controller):
    def __init__(self, handler: SinkHandler, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(handler, hostname=host, port=port, **kwargs)

    def factory(self) -> SMTP:
        return _SinkSMTP(self.handler, **self.SMTP_kwargs)


class Sink:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_context: ssl.SSLContext | None = None,
        smtputf8: bool = True,
        require_starttls: bool = False,
        handler: SinkHandler | None = None,
    ) -> None:
        self.handler = handler or SinkHandler()
        self.host = host
        self.port = port or free_port(host)
        self._controller = _SinkController(
            self.handler,
            host,
            self.port,
            enable_SMTPUTF8=smtputf8,
            tls_context=tls_context,
            require_starttls=require_starttls,
            ready_timeout=10,
        )

    def start(self) -> Sink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[SinkMessage]:
        return self.handler.messages

    @property
    def rcpt_replies(self) -> defaultdict[str, deque[str]]:
        return self.handler.rcpt_replies

    @property
    def data_command_replies(self) -> deque[str]:
        return self.handler.data_command_replies

    @property
    def data_replies(self) -> deque[str]:
        return self.handler.data_replies

    def wait_for(self, count: int, timeout: float = 20.0) -> list[SinkMessage]:
        """Wait until at least `count` messages arrived; return all of them."""
        deadline = time.monotonic() + timeout
        with self.handler.received:
            while len(self.handler.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"sink got {len(self.handler.messages)} message(s), expected {count}"
                    )
                self.handler.received.wait(remaining)
            return list(self.handler.messages)
