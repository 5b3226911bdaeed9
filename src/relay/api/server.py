"""uvicorn serving relay's app in the node's event loop, next to the SMTP listeners.

The node binds the listening sockets itself (`bind`), so that an address in use stops start-up
with the node's own message instead of uvicorn's `sys.exit`, and it handles SIGTERM/SIGINT for
every listener: `HttpServer.stop` ends uvicorn, which lets requests in progress finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from relay.config.types import HostPort

__all__ = ["GRACE_SECONDS", "HttpServer", "bind"]

GRACE_SECONDS = 10  # how long requests in progress may take to finish at shutdown
_BACKLOG = 128


def bind(listen: HostPort) -> list[socket.socket]:
    """Listening sockets for every address `listen.host` resolves to; OSError when one cannot
    be bound (none is left open then)."""
    infos = socket.getaddrinfo(
        listen.host, listen.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, protocol, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, protocol)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(_BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _NodeServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would replace the node's signal handlers with its own and raise the signal
        # again when it is done; the node stops this server itself.
        yield


class HttpServer:
    """`app` served on `sockets` from `start` until `stop`."""

    def __init__(self, app: ASGIApp, sockets: list[socket.socket]) -> None:
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,  # uvicorn's loggers propagate to relay's handlers
            access_log=False,  # request paths carry unsubscribe tokens
            # The client address is the TLS proxy's X-Forwarded-For when the proxy connects
            # over loopback; stated here so that uvicorn does not read FORWARDED_ALLOW_IPS.
            forwarded_allow_ips=["127.0.0.1", "::1"],
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        self._server = _NodeServer(config)
        self._sockets = sockets
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(self._sockets), name="http-server")

    async def stop(self) -> None:
        """Close the sockets, let requests in progress finish (at most GRACE_SECONDS)."""
        assert self._task is not None, "stop before start"
        self._server.should_exit = True
        await self._task
