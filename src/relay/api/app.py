"""The FastAPI application of one relay node."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from relay import __version__
from relay.api.unsubscribe import unsubscribe_router
from relay.audit.log import AuditLog
from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.stores.base import Stores

__all__ = ["create_app"]


def create_app(tokens: UnsubscribeTokens, stores: Stores, audit: AuditLog) -> FastAPI:
    """The app over the node's stores and audit log; `tokens` reads unsubscribe tokens."""
    app = FastAPI(title="relay", version=__version__)

    @app.exception_handler(HTTPException)
    async def plain_error(request: Request, exc: HTTPException) -> Response:
        # The public endpoints answer people and mailbox providers, not API clients: a short
        # sentence instead of FastAPI's JSON.
        return PlainTextResponse(f"{exc.detail}\n", exc.status_code, headers=exc.headers)

    app.include_router(unsubscribe_router(tokens, stores, audit))
    return app
