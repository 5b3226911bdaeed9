"""The public one-click unsubscribe endpoint `/u/<token>` (RFC 8058; DESIGN §4).

    POST /u/<token>   body: the form field List-Unsubscribe=One-Click (multipart/form-data or
                      application/x-www-form-urlencoded, RFC 8058 §3.1). Suppresses the mail the
                      token names (the sender's list, or all of the sender's mail) and answers
                      200: no redirect, no cookie, no login (§3.1, §6); a repeated POST is
                      answered 200 as well.
    GET  /u/<token>   a confirmation page whose button makes that POST. It never unsubscribes:
                      mail scanners and link prefetchers fetch every URI of a message.

A token that does not verify is answered 400 and nothing is recorded. Tokens do not expire
(CA-UNSUB-60D: valid at least 60 days). When the audit log or the store cannot be written the
answer is 503, so that the recipient or the mailbox provider tries again.
"""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from starlette.types import Message, Receive

from relay.audit.log import AuditLog
from relay.errors import AuditError, StoreUnavailable
from relay.feedback.suppress import suppress, unsubscribe_suppression
from relay.policy.inspect import ONE_CLICK
from relay.rewrite.unsubscribe import TokenClaims, UnsubscribeTokens
from relay.stores.base import Stores
from relay.stores.models import SuppressionReason
from relay.stores.stats import Kind

__all__ = ["MAX_BODY", "unsubscribe_router"]

MAX_BODY = 16 * 1024  # octets; a one-click body is a few hundred
SOURCE = "one-click"
RETRY_AFTER = "60"  # seconds, with a 503

log = logging.getLogger("relay.api.unsubscribe")

_FIELD, _, _VALUE = ONE_CLICK.partition("=")
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
}
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body {{ font-family: sans-serif; max-width: 32em; margin: 3em auto; padding: 0 1em }}</style>
</head>
<body>
<h1>{title}</h1>
{content}
</body>
</html>
"""


def unsubscribe_router(tokens: UnsubscribeTokens, stores: Stores, audit: AuditLog) -> APIRouter:
    """The `/u/<token>` routes, reading tokens with `tokens` and suppressing in `stores`."""
    router = APIRouter()

    @router.get("/u/{token}", response_class=HTMLResponse)
    async def confirmation_page(token: str) -> Response:
        claims = _read(tokens, token)
        content = (
            f"<p>Stop receiving {_what(claims)} from this sender?</p>\n"
            f'<form method="post" action="/u/{html.escape(token)}">\n'
            f'<input type="hidden" name="{_FIELD}" value="{_VALUE}">\n'
            '<button type="submit">Unsubscribe</button>\n'
            "</form>"
        )
        return HTMLResponse(_page("Unsubscribe", content), headers=_PAGE_HEADERS)

    @router.post("/u/{token}", response_class=HTMLResponse)
    async def one_click(token: str, request: Request) -> Response:
        claims = _read(tokens, token)
        if not await _asks_one_click(request):
            raise HTTPException(400, f"the request body must be the form field {ONE_CLICK}")
        client = request.client.host if request.client else None
        entry, event = unsubscribe_suppression(
            claims,
            reason=SuppressionReason.UNSUBSCRIBE_ONE_CLICK,
            source=SOURCE,
            how="one-click unsubscribe (RFC 8058 POST)",
            at=datetime.now(UTC),
            inputs={"client": client},
        )
        try:
            await suppress(stores, audit, entry, event, Kind.UNSUBSCRIBE)
        except (AuditError, StoreUnavailable) as exc:
            log.error("one-click unsubscribe of sender %s not recorded: %s", claims.sender_id, exc)
            raise HTTPException(
                503,
                "the unsubscribe request could not be recorded now; please try again later",
                headers={"Retry-After": RETRY_AFTER},
            ) from None
        log.info("%s", event.detail)
        content = f"<p>You will receive no more {_what(claims)} from this sender.</p>"
        return HTMLResponse(_page("Unsubscribed", content), headers=_PAGE_HEADERS)

    return router


def _read(tokens: UnsubscribeTokens, token: str) -> TokenClaims:
    claims = tokens.read(token)
    if claims is None:
        raise HTTPException(
            400, "this unsubscribe link is not valid; use the link from the message unchanged"
        )
    return claims


def _what(claims: TokenClaims) -> str:
    if claims.list_id is None:
        return "mail"
    return f"mail of the list \u201c{html.escape(claims.list_id)}\u201d"


def _page(title: str, content: str) -> str:
    return _PAGE.format(title=title, content=content)


async def _asks_one_click(request: Request) -> bool:
    """Whether the body is a form with List-Unsubscribe=One-Click; 413 past MAX_BODY."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"the request body is longer than {MAX_BODY} octets")
    # The form parser reads from the bounded copy, not from the client.
    form = await Request(request.scope, _replay(bytes(body))).form(max_files=0, max_fields=16)
    return _VALUE in form.getlist(_FIELD)


def _replay(body: bytes) -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
