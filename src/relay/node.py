"""One relay node: the listeners, the spool and the queue manager in one event loop."""

from __future__ import annotations

import asyncio
import logging
import signal

from relay import __version__
from relay.config.model import Settings
from relay.delivery.mx import MxResolver
from relay.delivery.queue_manager import QueueManager
from relay.ingest.auth import PasswordAuthenticator
from relay.ingest.handler import SubmissionHandler
from relay.ingest.session import SubmissionSession
from relay.ingest.tls import listener_context
from relay.spool.store import Spool

__all__ = ["ListenError", "serve"]

log = logging.getLogger("relay")


class ListenError(OSError):
    """A listener could not bind its address."""


async def serve(settings: Settings, source: str) -> None:
    """Run until SIGTERM or SIGINT."""
    tls_context = listener_context(settings, source, generate=True)
    spool = Spool(settings.spool_path)
    await spool.open()
    queue = QueueManager(spool, MxResolver(settings.dns, settings.delivery), settings.delivery)
    handler = SubmissionHandler(spool, settings.smtp.hostname, queue.enqueue)
    authenticator = PasswordAuthenticator(settings.smtp.users)
    listen = settings.smtp.listen
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: SubmissionSession(
                handler, settings.smtp, handler.submit, tls_context, authenticator
            ),
            host=listen.host,
            port=listen.port,
        )
    except OSError as exc:
        await spool.close()
        raise ListenError(
            exc.errno, f"cannot listen on {listen} ([smtp] listen): {exc.strerror}"
        ) from None
    await queue.start()
    log.info(
        "relay %s ready: submission on %s, spool %s, config %s",
        __version__,
        listen,
        settings.spool_path,
        source,
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("relay stopping: no new connections; finishing deliveries in progress")
        server.close()
        await server.wait_closed()
        await queue.stop()
        await spool.close()
        log.info("relay stopped")
