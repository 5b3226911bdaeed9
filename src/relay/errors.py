"""The one exception tree of relay.

    RelayError
    ├── ConfigError                 bad configuration or policy file; names FILE:key and the problem
    ├── ImportRowError              bad rows in an import file; names FILE:line and the problem
    ├── SpoolError                  the spool could not store or read a message
    ├── StoreUnavailable            a store (SQLite, Redis) could not be asked; answer 451 4.3.0
    ├── StoreConflict               a write contradicts what is stored (e.g. a consent id reused)
    ├── AuditError                  the audit log could not be written
    ├── SigningError                a message could not be DKIM-signed (bad header section, key)
    └── DeliveryError               a message or recipient could not be handled now
        ├── TemporaryFailure        try again later (4xx, timeouts, DNS SERVFAIL)
        └── PermanentFailure        will never succeed (5xx, NXDOMAIN, null MX)

Errors of lower libraries (aiosmtplib, dnspython, sqlite3, dkimpy, cryptography, OSError) are
translated into these at exactly one boundary per library; nothing above that boundary sees a
third-party exception type.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "ConfigError",
    "DeliveryError",
    "ImportRowError",
    "PermanentFailure",
    "RelayError",
    "SigningError",
    "SpoolError",
    "StoreConflict",
    "StoreUnavailable",
    "TemporaryFailure",
]


class RelayError(Exception):
    """Base of every error relay raises on purpose."""


class ConfigError(RelayError):
    """Configuration that relay refuses to start with; one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ImportRowError(RelayError):
    """Rows of an import file that cannot be imported; nothing of the file was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StoreUnavailable(RelayError):
    """A store could not answer; callers must not treat that as "no record" (fail closed)."""


class StoreConflict(RelayError):
    """A write that contradicts stored data."""


class AuditError(RelayError):
    """The audit log could not be appended to; the decision must not be acted on."""


class SigningError(RelayError):
    """A message could not be DKIM-signed: its header section cannot be parsed, or the key
    operation failed. Sending it unsigned would break the sender's DKIM alignment."""


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
