"""One relay node: the SMTP (submission, feedback) and HTTP listeners, the spool, the queue
manager and the feedback processor in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from relay import __version__
from relay.api.admin import Admin
from relay.api.app import create_app
from relay.api.auth import Authenticator
from relay.api.deadlines import watch_requests
from relay.api.server import HttpServer, bind
from relay.audit.log import AuditLog
from relay.config.model import Settings
from relay.config.types import HostPort
from relay.delivery.backoff import BackoffTable
from relay.delivery.mx import MxResolver
from relay.delivery.queue_manager import OutcomeListener, QueueManager
from relay.delivery.shaping import Shaping
from relay.delivery.tls_policy import TlsPolicy
from relay.feedback.delivery import DeliveryFeedback
from relay.feedback.inbox import Inbox
from relay.feedback.listener import FeedbackHandler, FeedbackSession
from relay.feedback.mailboxes import Mailboxes
from relay.feedback.processor import FeedbackProcessor
from relay.ingest.auth import PasswordAuthenticator
from relay.ingest.handler import SubmissionHandler
from relay.ingest.session import SubmissionSession
from relay.ingest.tls import listener_context
from relay.metrics import CountingAudit, count_outcomes
from relay.policy.checkpoint import Checkpoint
from relay.policy.engine import PolicyEngine
from relay.policy.files import load_policies, policy_paths
from relay.policy.rules import Fact
from relay.policy.rules.cadence import history_window
from relay.policy.standing import is_paused
from relay.rewrite.pipeline import Rewriter
from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.signing.keys import load_keys
from relay.signing.signer import Signer
from relay.spool.records import Envelope, Outcome
from relay.spool.store import Spool
from relay.stores.backends import make_budget, make_stores
from relay.stores.hashing import load_or_create_key
from relay.stores.history import SqliteHistory

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
        stores = make_stores(settings)
        await stores.open()
        stack.push_async_callback(stores.close)
        history = None
        if engine.needs(Fact.SEND_HISTORY):
            history = SqliteHistory(
                settings.stores_path.with_name("history.sqlite"),
                stores.hasher,
                keep=history_window(engine.policies),
            )
            await history.open()
            stack.push_async_callback(history.close)
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
            CountingAudit(audit),
            stores.hasher.hash,
            settings.audit.keep_addresses,
            rewriter,
            _readiness(settings, engine, signer),
            history,
        )
        keep_addresses = settings.audit.keep_addresses
        queue = QueueManager(
            spool,
            MxResolver(settings.dns, settings.delivery),
            settings.delivery,
            _counted(DeliveryFeedback(stores, audit, stores.hasher.hash, keep_addresses).record),
            tls_policy=TlsPolicy(settings.dns, settings.delivery),
            shaping=Shaping(settings.delivery.shaping, source),
            backoff=BackoffTable.load(settings.delivery.backoff_file),
            paused=functools.partial(is_paused, stores),
            budget=make_budget(stores),
        )
        handler = SubmissionHandler(
            spool, checkpoint, signer, settings.smtp.hostname, queue.enqueue, stores.stats
        )
        inbox = Inbox(settings.feedback_path)
        leftovers = await inbox.open()
        mailboxes = Mailboxes(
            stores, settings.unsubscribe_mailto_domain, settings.feedback.complaint_addresses
        )
        processor = FeedbackProcessor(
            inbox,
            mailboxes,
            stores,
            audit,
            tokens,
            settings.feedback,
            stores.hasher.hash,
            keep_addresses,
        )
        feedback = FeedbackHandler(inbox, mailboxes, processor.submit)
        admin = Admin(
            settings,
            stores,
            stores.hasher,
            audit,
            spool,
            queue,
            signer.keyring,
            Authenticator(stores, settings.http.failed_auth_limit),
        )
        app = create_app(tokens, stores, audit, admin)
        await processor.start(leftovers)
        stack.push_async_callback(processor.stop)
        deadlines = asyncio.create_task(watch_requests(stores), name="request-deadlines")
        stack.push_async_callback(_cancel, deadlines)
        await _run(settings, source, handler, feedback, queue, app, tls_context)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _counted(listener: OutcomeListener) -> OutcomeListener:
    """`listener`, after counting the outcomes for /metrics."""

    async def counted(envelope: Envelope, outcomes: Sequence[Outcome]) -> None:
        count_outcomes(outcomes)
        await listener(envelope, outcomes)

    return counted


def _readiness(settings: Settings, engine: PolicyEngine, signer: Signer) -> ReadinessCache | None:
    """The sender-domain DNS checks the loaded rules read, if any."""
    if not any(engine.needs(fact) for fact in (Fact.ENVELOPE_SPF, Fact.SENDER_DNS)):
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
    feedback: FeedbackHandler,
    queue: QueueManager,
    app: FastAPI,
    tls_context: ssl.SSLContext | None,
) -> None:
    authenticator = PasswordAuthenticator(settings.smtp.users)
    timeout = settings.smtp.timeout.total_seconds()
    async with contextlib.AsyncExitStack() as servers:
        # Closed in reverse order: the listeners first, deliveries in progress last.
        servers.push_async_callback(queue.stop)
        await _listen(
            servers,
            lambda: SubmissionSession(handler, settings.smtp, tls_context, authenticator),
            settings.smtp.listen,
            "[smtp] listen",
            reuse_port=settings.smtp.reuse_port,
        )
        await _listen(
            servers,
            lambda: FeedbackSession(
                feedback, settings.feedback, settings.smtp.hostname, timeout, tls_context
            ),
            settings.feedback.listen,
            "[feedback] listen",
        )
        try:
            http = HttpServer(app, bind(settings.http.listen))
        except OSError as exc:
            raise ListenError(
                exc.errno,
                f"cannot listen on {settings.http.listen} ([http] listen): {exc.strerror}",
            ) from None
        http.start()
        servers.push_async_callback(http.stop)
        await queue.start()
        log.info(
            "relay %s ready: submission on %s, feedback on %s, HTTP on %s, spool %s, config %s",
            __version__,
            settings.smtp.listen,
            settings.feedback.listen,
            settings.http.listen,
            settings.spool_path,
            source,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("relay stopping: no new connections; finishing deliveries in progress")
    log.info("relay stopped")


async def _listen(
    servers: contextlib.AsyncExitStack,
    factory: Callable[[], asyncio.Protocol],
    listen: HostPort,
    key: str,
    *,
    reuse_port: bool = False,
) -> None:
    """Serve `factory`'s sessions on `listen` until `servers` closes; ListenError naming the
    config `key` when the address cannot be bound."""
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            factory, host=listen.host, port=listen.port, reuse_port=reuse_port
        )
    except OSError as exc:
        # asyncio rewords the error ("error while attempting to bind ..."); errno says it plainly.
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ListenError(exc.errno, f"cannot listen on {listen} ({key}): {reason}") from None

    async def close() -> None:
        server.close()
        await server.wait_closed()

    servers.push_async_callback(close)
