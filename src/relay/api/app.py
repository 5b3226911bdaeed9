"""The FastAPI application of one relay node: the public unsubscribe pages, and with an Admin
the admin API under /api/v1/ (OpenAPI at /docs), the compliance report and the metrics."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from relay import __version__
from relay.api.admin import Admin
from relay.api.errors import install_error_handlers
from relay.api.routes import admin_routers
from relay.api.timing import RequestTiming
from relay.api.unsubscribe import unsubscribe_router
from relay.audit.log import AuditLog
from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.stores.base import Stores

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(
    tokens: UnsubscribeTokens, stores: Stores, audit: AuditLog, admin: Admin | None = None
) -> FastAPI:
    """The app over the node's stores and audit log; `tokens` reads unsubscribe tokens."""
    app = FastAPI(
        title="relay",
        version=__version__,
        description="Admin API of the relay gateway: suppressions, consent, senders, queue,"
        " audit and statistics. Authenticate with `Authorization: Bearer <token>`.",
    )

    async def plain_error(request: Request, exc: HTTPException) -> Response:
        # The public endpoints answer people and mailbox providers, not API clients: a short
        # sentence instead of JSON.
        return PlainTextResponse(f"{exc.detail}\n", exc.status_code, headers=exc.headers)

    install_error_handlers(app, plain_error)
    app.add_middleware(RequestTiming)
    app.include_router(unsubscribe_router(tokens, stores, audit))
    if admin is not None:
        for router, prefix in admin_routers(admin):
            app.include_router(router, prefix=API_PREFIX if prefix else "")
    return app
