"""What the spool keeps: the envelope of an accepted message and the state of each recipient.

A delivery result is shaped like an RFC 3464 per-recipient DSN field group (status, action,
diagnostic code, remote MTA) so that a DSN can be written from it without translation.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from relay.rewrite.verp import verp_address

__all__ = [
    "DeliveryResult",
    "Envelope",
    "MessageSummary",
    "Outcome",
    "PendingRecipient",
    "RecipientState",
    "RecipientStatus",
]


class RecipientState(StrEnum):
    """Every accepted recipient ends in exactly one final state (DESIGN §3): delivered, bounced
    (DSN), expired (DSN), or deleted by an operator (admin API; no DSN)."""

    QUEUED = "queued"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    EXPIRED = "expired"
    DELETED = "deleted"

    @property
    def final(self) -> bool:
        return self is not RecipientState.QUEUED


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one attempt for one recipient (RFC 3464 §2.3)."""

    status: str  # RFC 3463 enhanced status, e.g. "5.1.1"
    diagnostic: str  # what the remote said, e.g. "550 5.1.1 no such user", or our own reason
    remote_mta: str | None = None  # host name or [address] of the server that answered

    @property
    def permanent(self) -> bool:
        return self.status.startswith("5")

    @property
    def success(self) -> bool:
        return self.status.startswith("2")


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope of an accepted message, as written in its queue file."""

    queue_id: str
    mail_from: str  # "" is the null reverse path (DSNs)
    recipients: tuple[str, ...]
    received_at: float
    smtputf8: bool = False
    client_address: str = ""
    client_helo: str = ""
    auth_user: str | None = None
    # The sender's bounce domain (in ASCII) when each recipient gets its own VERP return path;
    # `mail_from` stays the mailer's address, where relay's own DSNs go.
    verp_domain: str | None = None
    # The sender profile the message was accepted for (None: no profile, a DSN, or a queue
    # file written before the field existed); feedback from its delivery is kept under it.
    sender_id: str | None = None
    # Its X-Relay-Campaign, under which its delivery outcomes are counted (relay.stores.stats);
    # None: no campaign, or a queue file written before the field existed.
    campaign: str | None = None
    # Its message class (relay.stores.models.MessageClass): commercial and mixed mail waits
    # while its sender is paused; None: a DSN, or a queue file written before the field existed.
    message_class: str | None = None
    # Recipients held by a send-time window: address -> earliest first attempt (epoch seconds).
    not_before: dict[str, float] = field(default_factory=dict)

    def return_path(self, recipient: str) -> str:
        """The MAIL FROM of the delivery to `recipient`: its VERP address under `verp_domain`,
        else `mail_from`. The null reverse path stays null: a DSN is never VERPed."""
        if self.verp_domain is None or not self.mail_from:
            return self.mail_from
        return verp_address(self.verp_domain, self.queue_id, recipient)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Envelope:
        fields = json.loads(data)
        fields["recipients"] = tuple(fields["recipients"])
        return cls(**fields)


# What one delivery attempt did for one recipient: address, new state, result, next attempt.
Outcome = tuple[str, RecipientState, DeliveryResult, float]


@dataclass(frozen=True, slots=True)
class PendingRecipient:
    address: str
    attempts: int
    next_attempt_at: float


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient of a message as the spool index has it (the admin API's view)."""

    address: str
    state: RecipientState
    attempts: int
    next_attempt_at: float | None  # None once final
    status: str | None  # of the last attempt (or of the operator's bounce or delete)
    diagnostic: str | None
    remote_mta: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """A message in the spool index: its envelope's indexed fields and its recipients' counts."""

    queue_id: str
    mail_from: str
    sender_id: str | None
    message_class: str | None
    received_at: float
    size: int
    held: bool  # held by an operator (admin API): not attempted until released
    recipients: int
    queued: int
    next_attempt_at: float | None  # the earliest among the queued recipients
