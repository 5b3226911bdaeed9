"""Bearer tokens and roles of the admin API.

A token is `relay_<id>_<secret>`, made by `relay tokens create` and shown once; the stores keep
its SHA-256, its role and, for a mailer, its sender. (A slow password hash buys nothing for 256
random bits: there is no dictionary to try.) Roles:

    operator     everything: queue, senders, suppressions, consent, audit, stats, metrics
    compliance   reads everything; manages consent, erasure and data-subject requests, adds
                 and removes suppressions; cannot change the queue or sender profiles
    mailer       suppressions of its own sender only

A request without a usable token is answered 401 (RFC 6750 `WWW-Authenticate: Bearer`), one
whose token lacks the role 403. Failed authentications are counted per client address in a
moving window (`[http] failed_auth_limit`); past it the client gets 429 with Retry-After,
whatever token it sends, until the window has room again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from relay.config.types import Rate
from relay.stores.base import Stores
from relay.stores.models import ApiRole, ApiToken

__all__ = [
    "ANYONE",
    "DATA_PROTECTION",
    "OPERATOR",
    "READERS",
    "Authenticator",
    "Principal",
    "new_token",
    "secret_hash",
]

log = logging.getLogger("relay.api.auth")

# Who may do what; every admin route names one of these.
OPERATOR = (ApiRole.OPERATOR,)  # change the queue, sender profiles
READERS = (ApiRole.OPERATOR, ApiRole.COMPLIANCE)  # read audit, consent, queue, stats, report
DATA_PROTECTION = (ApiRole.OPERATOR, ApiRole.COMPLIANCE)  # consent, erasure, requests
ANYONE = (ApiRole.OPERATOR, ApiRole.COMPLIANCE, ApiRole.MAILER)  # suppressions (mailer: own)

_PREFIX = "relay_"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from `relay tokens create --role operator|compliance|mailer`.",
)


def secret_hash(token: str) -> str:
    """What the stores keep of a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def new_token(
    name: str, role: ApiRole, sender_id: str | None, now: datetime
) -> tuple[str, ApiToken]:
    """A fresh token (to show once) and what to store of it."""
    token_id = secrets.token_hex(4)
    token = f"{_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    return token, ApiToken(token_id, name, role, secret_hash(token), now, sender_id)


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever a request's token names."""

    token_id: str
    name: str
    role: ApiRole
    sender_id: str | None  # a mailer's own sender

    def check_sender(self, sender_id: str | None) -> None:
        """403 unless this principal may act for `sender_id` (a mailer only for its own)."""
        if self.role is ApiRole.MAILER and sender_id != self.sender_id:
            raise HTTPException(
                403,
                f"token {self.name!r} (role mailer) may act only for sender"
                f" {self.sender_id!r}, not {sender_id!r}",
            )

    def sender_scope(self, sender_id: str | None) -> str | None:
        """The sender a listing is limited to: the one asked for, and a mailer's own always."""
        if self.role is ApiRole.MAILER:
            self.check_sender(sender_id if sender_id is not None else self.sender_id)
            return self.sender_id
        return sender_id

    def audit_inputs(self) -> dict[str, str]:
        """Who did it, for the audit record of an admin action."""
        return {"token_id": self.token_id, "token_name": self.name, "role": self.role.value}


class Authenticator:
    """Turns a request's bearer token into a Principal with one of the roles a route allows."""

    def __init__(self, stores: Stores, failure_limit: Rate) -> None:
        self._stores = stores
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = RateLimitItemPerSecond(failure_limit.amount, failure_limit.period)

    def allow(self, *roles: ApiRole) -> Callable[..., Awaitable[Principal]]:
        """A FastAPI dependency: the request's principal when its role is one of `roles`."""

        async def principal(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Principal:
            return await self.authenticate(request, credentials, roles)

        return principal

    async def authenticate(
        self,
        request: Request,
        credentials: HTTPAuthorizationCredentials | None,
        roles: tuple[ApiRole, ...],
    ) -> Principal:
        client = request.client.host if request.client else "unknown"
        if not self._limiter.test(self._limit, client):
            reset_at, _ = self._limiter.get_window_stats(self._limit, client)
            wait = max(1, math.ceil(reset_at - time.time()))
            raise HTTPException(
                429,
                f"too many failed authentications from {client}; try again in {wait}s",
                headers={"Retry-After": str(wait)},
            )
        if credentials is None:
            self._failed(client, "no bearer token")
            raise HTTPException(
                401,
                "authentication required: send `Authorization: Bearer <token>` with a token"
                " from `relay tokens create`",
                headers={"WWW-Authenticate": 'Bearer realm="relay"'},
            )
        token = await self._stores.api_token(secret_hash(credentials.credentials))
        if token is None or token.revoked_at is not None:
            self._failed(client, "unknown token" if token is None else f"revoked {token.name!r}")
            raise HTTPException(
                401,
                "the bearer token is unknown or revoked",
                headers={"WWW-Authenticate": 'Bearer realm="relay", error="invalid_token"'},
            )
        if token.role not in roles:
            allowed = " or ".join(role.value for role in roles)
            raise HTTPException(
                403,
                f"token {token.name!r} has role {token.role.value}; {request.method}"
                f" {request.url.path} needs role {allowed}",
            )
        return Principal(token.token_id, token.name, token.role, token.sender_id)

    def _failed(self, client: str, why: str) -> None:
        self._limiter.hit(self._limit, client)
        log.warning("admin API: authentication failed from %s: %s", client, why)
