"""The one exception tree of relay.

    RelayError
    ├── ConfigError                 bad configuration; names FILE:key and the problem
    └── DeliveryError               a message or recipient could not be handled now
        ├── TemporaryFailure        try again later (4xx, timeouts, DNS SERVFAIL)
        └── PermanentFailure        will never succeed (5xx, NXDOMAIN, null MX)

Errors of lower libraries (aiosmtplib, dnspython, sqlite3, OSError) are translated into these at
exactly one boundary per library; nothing above that boundary sees a third-party exception type.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "PermanentFailure",
    "RelayError",
    "SpoolError",
    "TemporaryFailure",
]


class RelayError(Exception):
    """Base of every error relay raises on purpose."""


class ConfigError(RelayError):
    """Configuration that relay refuses to start with; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SpoolError(RelayError):
    """The spool could not store or read a message (disk full, permissions, corruption)."""


class DeliveryError(RelayError):
    """A delivery step failed; carries the RFC 3463 status and the diagnostic to report."""

    permanent: bool = False

    def __init__(self, status: str, diagnostic: str, remote_mta: str | None = None) -> None:
        self.status = status
        self.diagnostic = diagnostic
        self.remote_mta = remote_mta
        super().__init__(f"{status} {diagnostic}")


class TemporaryFailure(DeliveryError):
    permanent = False


class PermanentFailure(DeliveryError):
    permanent = True
