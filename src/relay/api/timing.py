"""ASGI middleware timing every HTTP request into relay_http_request_seconds, labelled with the
route's path template (`/u/{token}`, never the token itself) and the response status."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from relay.metrics import HTTP_REQUESTS

__all__ = ["RequestTiming"]


class RequestTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            HTTP_REQUESTS.labels(scope["method"], _template(scope), str(status)).observe(
                time.perf_counter() - started
            )


def _template(scope: Scope) -> str:
    """The matched route's path template with the prefix it was included under: FastAPI names
    the route as its router declared it (`/token`), the request's path has the prefix."""
    template = getattr(scope.get("route"), "path", None)
    if not isinstance(template, str):
        return "unmatched"
    try:
        concrete = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    path: str = scope["path"]
    return path.removesuffix(concrete) + template if path.endswith(concrete) else template
