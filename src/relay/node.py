"""One relay node: the SMTP and HTTP listeners, the spool and the queue manager in one event
loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from typing import TYPE_CHECKING

from relay import __version__
from relay.api import HttpServer, bind, create_app
from relay.audit.log import AuditLog
from relay.config.model import Settings
from relay.delivery.mx import MxResolver
from relay.delivery.queue_manager import QueueManager
from relay.ingest.auth import PasswordAuthenticator
from relay.ingest.handler import SubmissionHandler
from relay.ingest.session import SubmissionSession
from relay.ingest.tls import listener_context
from relay.policy.checkpoint import Checkpoint
from relay.policy.engine import PolicyEngine
from relay.policy.files import load_policies, policy_paths
from relay.policy.rules import Fact
from relay.rewrite.pipeline import Rewriter
from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.signing.keys import load_keys
from relay.signing.signer import Signer
from relay.spool.store import Spool
from relay.stores.hashing import load_or_create_key
from relay.stores.sqlite import SqliteStores

if TYPE_CHECKING:
    from fastapi import FastAPI

    from relay.dnscheck.cache import ReadinessCache

__all__ = ["ListenError", "serve"]

log = logging.getLogger("relay")


class ListenError(OSError):
    """A listener could not bind its address."""


async def serve(settings: Settings, source: str) -> None:
    """Run until SIGTERM or SIGINT."""
    tls_context = listener_context(settings, source, generate=True)
    engine = PolicyEngine(load_policies(policy_paths(settings.policy.files)))
    signer = Signer(load_keys(settings.dkim, source))
    async with contextlib.AsyncExitStack() as stack:
        spool = Spool(settings.spool_path)
        await spool.open()
        stack.push_async_callback(spool.close)
        stores = SqliteStores.from_settings(settings)
        await stores.open()
        stack.push_async_callback(stores.close)
        audit = AuditLog(settings.audit_path, node=settings.smtp.hostname)
        await audit.open()
        stack.push_async_callback(audit.close)
        tokens = UnsubscribeTokens(load_or_create_key(settings.unsubscribe_token_key_path))
        rewriter = Rewriter(
            tokens,
            settings.unsubscribe_host,
            settings.unsubscribe_mailto_domain,
            signer.has_key_for,
        )
        checkpoint = Checkpoint(
            engine,
            stores,
            audit,
            stores.hasher.hash,
            settings.audit.keep_addresses,
            rewriter,
            _readiness(settings, engine, signer),
        )
        queue = QueueManager(spool, MxResolver(settings.dns, settings.delivery), settings.delivery)
        handler = SubmissionHandler(
            spool, checkpoint, signer, settings.smtp.hostname, queue.enqueue
        )
        app = create_app(tokens, stores, audit)
        await _run(settings, source, handler, queue, app, tls_context)


def _readiness(settings: Settings, engine: PolicyEngine, signer: Signer) -> ReadinessCache | None:
    """The sender-domain DNS checks the loaded rules read, if any."""
    if not any(engine.needs(fact) for fact in Fact):
        return None
    from relay.dnscheck.cache import ReadinessCache  # loads checkdmarc

    egress = settings.delivery.egress_addresses
    if not egress and engine.needs(Fact.ENVELOPE_SPF):
        log.warning(
            "MBP-SPF-PASS cannot judge SPF: [delivery] egress_addresses is empty; list the"
            " addresses receivers see relay's mail come from"
        )
    return ReadinessCache(
        settings.dns,
        signer.keyring,
        egress,
        settings.dns.readiness_ttl.total_seconds(),
    )


async def _run(
    settings: Settings,
    source: str,
    handler: SubmissionHandler,
    queue: QueueManager,
    app: FastAPI,
    tls_context: ssl.SSLContext | None,
) -> None:
    authenticator = PasswordAuthenticator(settings.smtp.users)
    listen = settings.smtp.listen
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: SubmissionSession(handler, settings.smtp, tls_context, authenticator),
            host=listen.host,
            port=listen.port,
        )
    except OSError as exc:
        raise ListenError(
            exc.errno, f"cannot listen on {listen} ([smtp] listen): {exc.strerror}"
        ) from None
    try:
        http = HttpServer(app, bind(settings.http.listen))
    except OSError as exc:
        server.close()
        await server.wait_closed()
        raise ListenError(
            exc.errno, f"cannot listen on {settings.http.listen} ([http] listen): {exc.strerror}"
        ) from None
    http.start()
    await queue.start()
    log.info(
        "relay %s ready: submission on %s, HTTP on %s, spool %s, config %s",
        __version__,
        listen,
        settings.http.listen,
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
        await http.stop()
        await server.wait_closed()
        await queue.stop()
        log.info("relay stopped")
