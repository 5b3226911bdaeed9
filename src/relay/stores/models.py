"""What the stores keep (COMPLIANCE §1.2, §1.3): suppression entries, consent records and sender
profiles. Addresses are kept as keyed hashes (`address_hash`); the clear address is optional."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

__all__ = [
    "ApiRole",
    "ApiToken",
    "ComplaintRate",
    "ConsentBasis",
    "ConsentRecord",
    "ErasureResult",
    "MessageClass",
    "PauseAction",
    "PauseChange",
    "SenderProfile",
    "SoftBounce",
    "SubjectRequest",
    "SubjectRequestKind",
    "SuppressionEntry",
    "SuppressionKey",
    "SuppressionQuery",
    "SuppressionReason",
    "SuppressionScope",
]


class MessageClass(StrEnum):
    """COMPLIANCE §1.1."""

    COMMERCIAL = "commercial"
    TRANSACTIONAL = "transactional"
    MIXED = "mixed"
    OTHER = "other"


class SuppressionReason(StrEnum):
    UNSUBSCRIBE_ONE_CLICK = "unsubscribe_one_click"
    UNSUBSCRIBE_MAILTO = "unsubscribe_mailto"
    COMPLAINT_ARF = "complaint_arf"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"  # [feedback] soft_bounce_limit within soft_bounce_window
    ERASURE = "erasure"
    OBJECTION = "objection"
    MANUAL = "manual"


class SuppressionScope(StrEnum):
    SENDER = "sender"  # no mail of this sender at all
    LIST = "sender+list"  # no mail of this sender's list `list_id`


@dataclass(frozen=True, slots=True)
class SuppressionEntry:
    address_hash: str
    sender_id: str
    scope: SuppressionScope
    reason: SuppressionReason
    source: str  # who or what asked: "import:file.csv", "arf", "one-click", an operator
    received_at: datetime
    list_id: str | None = None
    source_message_id: str | None = None
    address: str | None = None  # kept only where retention allows
    audit_ref: str | None = None  # hash of the audit record of what caused it (relay's own)


class ConsentBasis(StrEnum):
    EXPRESS_OPTIN = "express_optin"
    CONFIRMED_OPTIN = "confirmed_optin"
    SOFT_OPTIN_CUSTOMER = "soft_optin_customer"
    CA_IMPLIED_EBR = "ca_implied_ebr"
    CA_IMPLIED_PUBLISHED = "ca_implied_published"
    JP_EXCEPTION = "jp_exception"
    REQUEST = "request"

    @property
    def affirmative(self) -> bool:
        """Prior affirmative consent (15 U.S.C. 7702(1)); explicit consent (PRC 明确同意)."""
        return self in (
            ConsentBasis.EXPRESS_OPTIN,
            ConsentBasis.CONFIRMED_OPTIN,
            ConsentBasis.REQUEST,
        )


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    record_id: str
    address_hash: str
    sender_id: str  # the controller
    scope: tuple[str, ...]  # list ids, or ("*",) for all commercial mail of the sender
    basis: ConsentBasis
    jurisdictions: frozenset[str]  # "US", "EU", "CN", ...
    obtained_at: datetime
    source: str  # mechanism: form id, IP, user agent
    evidence_ref: str
    notice_version: str | None = None
    affirmative_action: bool = True
    bundled: bool = False
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None
    product_category: str | None = None  # soft opt-in: what the customer bought
    address: str | None = None
    time_zone: str | None = None  # IANA name: the recipient's local time (send windows)

    def covers(self, list_id: str | None, at: datetime) -> bool:
        """Valid at `at` for mail of this sender to `list_id`."""
        if self.withdrawn_at is not None and self.withdrawn_at <= at:
            return False
        if self.expires_at is not None and self.expires_at <= at:
            return False
        return "*" in self.scope or (list_id is not None and list_id in self.scope)


@dataclass(frozen=True, slots=True)
class SenderProfile:
    sender_id: str
    legal_name: str
    postal_address: str
    contact: str  # an e-mail address or URL for the recipient to reach the sender
    verified_domains: tuple[str, ...]
    default_jurisdiction: str | None = None
    message_class: MessageClass = MessageClass.COMMERCIAL  # the stream's declared class
    users: tuple[str, ...] = field(default_factory=tuple)  # SMTP AUTH names of this sender
    # Rewrites (relay.rewrite.plan.FixPreferences, COMPLIANCE §11 point 11): fixes ordered by US
    # rules are made only when the sender opted in (`fix_us`); the others unless it opted out
    # of fixes altogether (`fixes_allowed` False, which also stops the US ones).
    fix_us: bool = False
    fixes_allowed: bool = True
    # VERP (relay.rewrite.verp): with a bounce domain, each recipient's copy leaves with a MAIL
    # FROM under it naming queue entry and recipient; None keeps the mailer's MAIL FROM.
    bounce_domain: str | None = None
    time_zone: str | None = None  # IANA name: the last resort for recipients' local time


@dataclass(frozen=True, slots=True)
class SoftBounce:
    """One temporary failure of a recipient of a sender, kept to count repeats."""

    address_hash: str
    sender_id: str
    at: datetime
    status: str | None  # RFC 3463 enhanced status, e.g. "4.2.2"
    reason: str  # the bounce reason (Sisimai's vocabulary)
    source: str  # which bounce: the feedback inbox file or the queue id


class ComplaintRate(NamedTuple):
    """A sender's complaints and delivered recipients over a window (MBP-COMPLAINT-RATE)."""

    complaints: int
    delivered: int
    rate: float | None  # complaints / delivered; None when nothing was delivered


class PauseAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class PauseChange:
    """A pause or resume of a sender's commercial stream, as the stores journal it: the latest
    change of a sender says whether its commercial mail waits (MBP-COMPLAINT-RATE)."""

    sender_id: str
    action: PauseAction
    at: datetime
    reason: str
    source: str  # "operator", or the rule id of an automatic pause
    seq: int = 0  # the journal's order; 0 until stored


class ApiRole(StrEnum):
    """Who holds an admin API token (relay.api.auth says what each may do)."""

    OPERATOR = "operator"
    COMPLIANCE = "compliance"
    MAILER = "mailer"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An admin API bearer token as stored: the SHA-256 of the secret, never the secret."""

    token_id: str  # public, printed in lists and audit records
    name: str
    role: ApiRole
    secret_hash: str  # hex SHA-256 of the whole token
    created_at: datetime
    sender_id: str | None = None  # a mailer's sender: the only one it may act for
    revoked_at: datetime | None = None


class SuppressionKey(NamedTuple):
    """Where an entry stands in the order of listings and exports: sender, keyed hash, list
    ('' for a sender-wide entry). A page of a listing continues after the last key of the
    previous page."""

    sender_id: str
    address_hash: str
    list_key: str

    @classmethod
    def of(cls, entry: SuppressionEntry) -> SuppressionKey:
        return cls(entry.sender_id, entry.address_hash, entry.list_id or "")


@dataclass(frozen=True, slots=True)
class SuppressionQuery:
    """Which suppression entries a listing or export wants (None: any)."""

    sender_id: str | None = None
    reason: SuppressionReason | None = None
    list_id: str | None = None
    address_hash: str | None = None
    received_since: datetime | None = None  # inclusive
    received_until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erasure (EU-ERASURE, PRC-PIPL-DELETE) did in the stores."""

    consents_deleted: tuple[str, ...]  # record ids
    suppressions_cleared: int  # entries whose clear address was removed
    soft_bounces_deleted: int
    requests_cleared: int  # data-subject requests whose clear address was removed
    suppressions_added: int  # erasure entries (one per sender, keyed hash only)


class SubjectRequestKind(StrEnum):
    """GDPR Art. 15-21: what a data subject asked for."""

    ACCESS = "access"  # Art. 15
    RECTIFICATION = "rectification"  # Art. 16
    ERASURE = "erasure"  # Art. 17
    RESTRICTION = "restriction"  # Art. 18
    PORTABILITY = "portability"  # Art. 20
    OBJECTION = "objection"  # Art. 21


@dataclass(frozen=True, slots=True)
class SubjectRequest:
    """A data subject's request to a sender (the controller), answered within a month of
    receipt (EU-RESPONSE-1M, GDPR Art. 12(3))."""

    request_id: str
    kind: SubjectRequestKind
    address_hash: str
    sender_id: str
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None = None
    note: str | None = None
    address: str | None = None  # kept only where retention allows; erasure removes it
    audit_ref: str | None = None  # hash of the audit record of its registration
