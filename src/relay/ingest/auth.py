"""SMTP AUTH (PLAIN, LOGIN) against Argon2 password hashes from [[smtp.users]]."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from relay.config.model import SmtpUser

__all__ = ["PasswordAuthenticator", "hash_password"]

log = logging.getLogger("relay.ingest")

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


class PasswordAuthenticator:
    """aiosmtpd authenticator. Argon2 is slow on purpose; a successful check is remembered
    (as a keyed digest of name and password, never the password) so that a mailer opening many
    connections pays it once."""

    def __init__(self, users: list[SmtpUser]) -> None:
        self._hashes = {user.name: user.password_hash for user in users}
        self._cache_key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        name = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password
        if self._check(name, password):
            return AuthResult(success=True, auth_data=name)
        log.warning("AUTH %s failed for user %r from %s", mechanism, name, session.peer[0])
        return AuthResult(success=False, handled=False)

    def _check(self, name: str, password: bytes) -> bool:
        digest = hmac.new(self._cache_key, name.encode() + b"\0" + password, hashlib.sha256)
        token = digest.digest()
        if token in self._verified:
            return True
        stored = self._hashes.get(name)
        if stored is None:
            return False
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
        self._verified.add(token)
        return True
