"""What the feedback parsers return: one record per recipient a bounce or a complaint report is
about. The field names follow the JSON Lines contracts of `relay bounces classify` and
`relay complaints parse` (DESIGN §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["BounceCategory", "BounceRecord", "ComplaintRecord"]


class BounceCategory(StrEnum):
    """relay's own coarse class of a bounce reason (Sisimai's vocabulary is finer)."""

    USER_UNKNOWN = "user_unknown"  # userunknown, hasmoved
    HOST_UNKNOWN = "host_unknown"  # hostunknown, notaccept
    MAILBOX_FULL = "mailbox_full"  # mailboxfull, systemfull
    MAILBOX_DISABLED = "mailbox_disabled"  # suspend
    POLICY = "policy"  # blocked, rejected, policyviolation, authfailure, requireptr, ...
    SPAM = "spam"  # spamdetected, virusdetected, contenterror, filtered
    RATE_LIMITED = "rate_limited"  # toomanyconn, speeding
    SIZE = "size"  # mesgtoobig, exceedlimit
    EXPIRED = "expired"  # expired
    TRANSIENT = "transient"  # networkerror, systemerror, mailererror, syntaxerror
    UNKNOWN = "unknown"  # onhold, undefined
    NOT_BOUNCE = "not_bounce"  # delivered, vacation, feedback: no failure to act on


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """One failed (or, for a success DSN, delivered) recipient of a bounce."""

    recipient: str | None
    reason: str  # Sisimai's reason name, e.g. "userunknown"
    category: BounceCategory
    hard: bool
    status: str | None  # RFC 3463 enhanced status, e.g. "5.1.1"
    replycode: int | None  # SMTP reply code, e.g. 550
    diagnostic: str = ""  # what the remote server said
    original_message_id: str | None = None  # Message-ID of the bounced message, without <>
    queue_id: str | None = None  # relay's queue entry, when the bounce came to a VERP address

    @property
    def is_failure(self) -> bool:
        """False for a success DSN, an auto-reply or a complaint: nothing to suppress."""
        return self.category is not BounceCategory.NOT_BOUNCE

    def to_json(self, file: str) -> dict[str, Any]:
        """The `relay bounces classify` line (DESIGN §4)."""
        return {
            "file": file,
            "recipient": self.recipient,
            "reason": self.reason,
            "category": self.category.value,
            "hard": self.hard,
            "status": self.status,
            "replycode": self.replycode,
        }


@dataclass(frozen=True, slots=True)
class ComplaintRecord:
    """One complained-about recipient of a feedback report (ARF or a provider's variant)."""

    feedback_type: str  # lower case: abuse, fraud, auth-failure, opt-out, not-spam, virus, other
    original_recipient: str | None
    original_message_id: str | None  # without <>
    source_ip: str | None
    reported_domain: str | None
    # Every machine-readable field of the report (RFC 5965 §3.5, RFC 6591 §3.1), lower-case
    # names as mail-auth's JSON has them: original_mail_from, reported_uri, auth_failure,
    # dkim_domain, ...; repeated fields are lists.
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self, file: str) -> dict[str, Any]:
        """The `relay complaints parse` line (DESIGN §4)."""
        return {
            "file": file,
            "feedback_type": self.feedback_type,
            "original_recipient": self.original_recipient,
            "original_message_id": self.original_message_id,
            "source_ip": self.source_ip,
            "reported_domain": self.reported_domain,
        }
