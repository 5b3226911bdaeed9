"""Destination MX that misbehave on purpose, for the traffic shaping and backoff stories, and count
what relay does to them by their own clock: time.monotonic() of the test process, in which the
sinks run (so a test may compare it with its own readings of the clock).

- CountingSink: a Sink (tests/support/sink.py) that records each connection (when it opened and
  closed, the messages it carried), the most connections open at once, and each MAIL command and
  accepted message with its time and MAIL FROM. `mail_replies` refuses given senders at MAIL,
  every time; `reply_delay` makes it slow (it waits that long before answering MAIL, RCPT and
  DATA).
- ThrottlingSink: a CountingSink that answers `421 4.7.0 try later` (at MAIL or RCPT) to the
  transaction that would make more than `limit` admitted within `window` seconds, until
  `throttling` is switched off.
- RefusingListener: a host that will not take mail: it greets each connection with a 554
  (RFC 5321 §3.1: no SMTP service here) and closes it, or resets it at once; and counts the
  connection attempts.

Every list is appended to in the sink's thread; read them through `snapshot()`-style copies
(`attempt_times()`, `arrival_times()`, ...) or under `handler.received`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.network import free_port
from tests.support.polling import poll
from tests.support.sink import Sink, SinkHandler

__all__ = [
    "Arrival",
    "Attempt",
    "Connection",
    "CountingHandler",
    "CountingSink",
    "RefusingListener",
    "ThrottlingHandler",
    "ThrottlingSink",
    "max_in_window",
]

THROTTLE_REPLY = "421 4.7.0 try later"


def max_in_window(times: Sequence[float], width: float) -> int:
    """The most of `times` that fall in any window [t, t + width)."""
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + width) - i for i, start in enumerate(ordered)), default=0
    )


@dataclass
class Connection:
    opened: float
    closed: float | None = None
    mail_froms: list[str] = field(default_factory=list)  # one per MAIL command over it
    messages: int = 0  # accepted over it


@dataclass(frozen=True)
class Attempt:
    """A MAIL command, and the sink's answer to the transaction if it refused it on purpose."""

    at: float
    mail_from: str
    refused: str | None = None


@dataclass(frozen=True)
class Arrival:
    """A message the sink accepted: when its data was in, from whom, over which connection."""

    at: float
    mail_from: str
    rcpt_tos: tuple[str, ...]
    connection: int  # index in `connections`


@dataclass
class CountingHandler(SinkHandler):
    mail_replies: dict[str, str] = field(default_factory=dict)  # MAIL FROM -> refusal, always
    reply_delay: float = 0.0  # seconds before answering MAIL, RCPT and DATA
    connections: list[Connection] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    open_now: int = 0
    max_open: int = 0
    _open: dict[int, int] = field(default_factory=dict)  # id(server) -> index in connections
    _current: dict[int, int] = field(default_factory=dict)  # id(server) -> its last attempt

    # -- connections --------------------------------------------------------------------------

    def connection_made(self, server: Any) -> None:
        with self.received:
            self._open[id(server)] = len(self.connections)
            self.connections.append(Connection(time.monotonic()))
            self.open_now += 1
            self.max_open = max(self.max_open, self.open_now)

    def connection_lost(self, server: Any) -> None:
        with self.received:
            index = self._open.pop(id(server), None)
            self._current.pop(id(server), None)
            if index is not None:
                self.connections[index].closed = time.monotonic()
                self.open_now -= 1
            self.received.notify_all()

    def _connection(self, server: Any) -> int:
        return self._open[id(server)]

    # -- what to refuse (subclasses decide more) ----------------------------------------------

    def refuse_mail(self, mail_from: str, now: float) -> str | None:
        return self.mail_replies.get(mail_from)

    def refuse_rcpt(self, mail_from: str, now: float) -> str | None:
        return None

    # -- SMTP ---------------------------------------------------------------------------------

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        now = time.monotonic()
        refusal = self.refuse_mail(address, now)
        with self.received:
            self.attempts.append(Attempt(now, address, refusal))
            self.connections[self._connection(server)].mail_froms.append(address)
            self._current[id(server)] = len(self.attempts) - 1
        await self._delay()
        if refusal is not None:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        refusal = self.refuse_rcpt(envelope.mail_from, time.monotonic())
        await self._delay()
        if refusal is not None:
            with self.received:
                index = self._current[id(server)]
                attempt = self.attempts[index]
                self.attempts[index] = Attempt(attempt.at, attempt.mail_from, refusal)
            return refusal
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        await self._delay()
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            with self.received:
                index = self._connection(server)
                self.connections[index].messages += 1
                self.arrivals.append(
                    Arrival(now, envelope.mail_from, tuple(envelope.rcpt_tos), index)
                )
        return reply

    async def _delay(self) -> None:
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)


@dataclass
class ThrottlingHandler(CountingHandler):
    limit: int = 5  # transactions admitted within `window` before the sink pushes back
    window: float = 1.0
    at: str = "MAIL"  # or "RCPT": the command answered with `throttle_reply`
    throttle_reply: str = THROTTLE_REPLY
    throttling: bool = True  # False: accept everything
    _admitted: deque[float] = field(default_factory=deque)

    def _throttle(self, now: float) -> str | None:
        with self.received:
            while self._admitted and self._admitted[0] <= now - self.window:
                self._admitted.popleft()
            if self.throttling and len(self._admitted) >= self.limit:
                return self.throttle_reply
            self._admitted.append(now)
            return None

    def refuse_mail(self, mail_from: str, now: float) -> str | None:
        refusal = super().refuse_mail(mail_from, now)
        if refusal is None and self.at == "MAIL":
            refusal = self._throttle(now)
        return refusal

    def refuse_rcpt(self, mail_from: str, now: float) -> str | None:
        return self._throttle(now) if self.at == "RCPT" else None


class CountingSink(Sink):
    """A Sink with a CountingHandler (or the handler given); keyword arguments the Sink does not
    take go to the handler."""

    handler: CountingHandler

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        handler: CountingHandler | None = None,
        **handler_settings: Any,
    ) -> None:
        super().__init__(host, port, handler=handler or CountingHandler(**handler_settings))

    # -- copies of what it counted, safe to read from the test's thread ------------------------

    def connections(self) -> list[Connection]:
        with self.handler.received:
            return [
                Connection(c.opened, c.closed, list(c.mail_froms), c.messages)
                for c in self.handler.connections
            ]

    def attempts(self) -> list[Attempt]:
        with self.handler.received:
            return list(self.handler.attempts)

    def arrivals(self) -> list[Arrival]:
        with self.handler.received:
            return list(self.handler.arrivals)

    def attempt_times(self, mail_from: str | None = None) -> list[float]:
        return [a.at for a in self.attempts() if mail_from in (None, a.mail_from)]

    def arrival_times(self) -> list[float]:
        return [a.at for a in self.arrivals()]

    @property
    def max_open(self) -> int:
        with self.handler.received:
            return self.handler.max_open

    @property
    def open_now(self) -> int:
        with self.handler.received:
            return self.handler.open_now


class ThrottlingSink(CountingSink):
    handler: ThrottlingHandler

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **handler_settings: Any) -> None:
        super().__init__(host, port, handler=ThrottlingHandler(**handler_settings))

    def accept_everything(self) -> None:
        with self.handler.received:
            self.handler.throttling = False

    def refusals(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts() if attempt.refused is not None]


class RefusingListener:
    """Refuses every connection and counts them: greets with `greeting` and closes, or, with
    greeting None, resets the connection at once (the client sees "connection reset by peer",
    or a connection lost before the greeting when the reset comes after its connect)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        greeting: str | None = "554 5.3.2 No SMTP service here",
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.greeting = greeting
        self._attempts: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._thread = threading.Thread(target=self._serve, name="refusing-listener", daemon=True)

    def start(self) -> RefusingListener:
        self._socket.bind((self.host, self.port))
        self._socket.listen(16)
        self._socket.settimeout(0.05)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def attempts(self) -> list[float]:
        """When each connection came in (time.monotonic())."""
        with self._lock:
            return list(self._attempts)

    def wait_for_attempts(self, count: int, timeout: float = 20.0) -> list[float]:
        attempts = poll(lambda: a if len(a := self.attempts()) >= count else None, timeout)
        assert attempts is not None, f"{len(self.attempts())} connection(s), expected {count}"
        return attempts

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._attempts.append(time.monotonic())
            with connection:
                if self.greeting is None:
                    # Linger 0: close() sends RST instead of FIN.
                    linger = struct.pack("ii", 1, 0)
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    continue
                with contextlib.suppress(OSError):
                    connection.sendall(f"{self.greeting}\r\n".encode())
