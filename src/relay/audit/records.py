"""One audit record: a decision about one recipient of one message (DESIGN §2, issue 4 §6)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["AuditEvent"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What was decided, by which rule, on which inputs. `action` is the rule's action
    (reject/defer/fix/warn) or `accept` when a recipient or message was accepted, `refuse` for a
    refusal that no rule made (e.g. the store could not be asked)."""

    time: str  # ISO 8601, UTC
    stage: str  # rcpt | data | queue
    action: str
    mail_from: str
    recipient_hash: str
    queue_id: str | None = None
    message_id: str | None = None  # the Message-ID header, when known
    recipient: str | None = None  # the clear address, only where retention allows
    rule_id: str | None = None
    citation: str | None = None
    policy: str | None = None
    reply: str | None = None  # the SMTP reply sent for this decision, if any
    detail: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    sender_id: str | None = None
    relay_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, **changes: Any) -> AuditEvent:
        return replace(self, **changes)
