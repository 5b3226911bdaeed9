"""How the admin API answers what went wrong: one JSON shape for every error.

    {"status": 422, "error": "body.address: ...; query.limit: ...",
     "fields": [{"field": "body.address", "problem": "..."}, ...]}

`fields` is there for a bad request (422: what pydantic or an import file found), naming each
field or line. relay's own errors are answered here too, so a route never turns one into a
traceback: StoreConflict 409, ImportRowError 422 (one problem per `line N`), and a store, spool
or audit log that cannot be written 503 with Retry-After (nothing was changed, or the audit
record says what was asked; asking again is safe).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from relay.errors import AuditError, ImportRowError, SpoolError, StoreConflict, StoreUnavailable

__all__ = ["RETRY_AFTER", "error_response", "install_error_handlers"]

log = logging.getLogger("relay.api")

RETRY_AFTER = "60"  # seconds, with a 503


def error_response(
    status: int,
    message: str,
    fields: Sequence[dict[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "error": message}
    if fields:
        body["fields"] = list(fields)
    return JSONResponse(body, status, headers=dict(headers or {}))


def _field(location: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in location) or "body"


def _validation_fields(exc: RequestValidationError) -> list[dict[str, str]]:
    fields = []
    for error in exc.errors():
        problem = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            problem = "the body is not valid JSON"
        fields.append({"field": _field(error.get("loc", ())), "problem": problem})
    return fields


def install_error_handlers(app: FastAPI, plain: Any) -> None:
    """JSON errors for the admin API; `plain` answers HTTPExceptions of the public pages
    (`/u/...`), whose readers are people and mailbox providers."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Any:
        if request.url.path.startswith("/u/"):
            return await plain(request, exc)
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _validation_fields(exc)
        message = "; ".join(f"{item['field']}: {item['problem']}" for item in fields)
        return error_response(422, message, fields)

    @app.exception_handler(ImportRowError)
    async def bad_rows(request: Request, exc: ImportRowError) -> JSONResponse:
        fields = [{"field": "body", "problem": problem} for problem in exc.problems]
        return error_response(422, "nothing imported: " + "; ".join(exc.problems[:5]), fields)

    @app.exception_handler(StoreConflict)
    async def conflict(request: Request, exc: StoreConflict) -> JSONResponse:
        return error_response(409, str(exc))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("admin API: %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503,
            f"{exc}; nothing more was changed, try again later",
            headers={"Retry-After": RETRY_AFTER},
        )

    for error in (StoreUnavailable, AuditError, SpoolError):
        app.add_exception_handler(error, unavailable)
