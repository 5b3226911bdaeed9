"""Rules every jurisdiction shares under its own id and citation: suppression."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage
from relay.policy.rules import rule


@rule("MBP-UNSUB-48H", Stage.RCPT)
@rule("US-OPTOUT-HONOR-10BD", Stage.RCPT)
@rule("EU-OBJECTION-STOP", Stage.RCPT)
@rule("PRC-OPTOUT-STOP", Stage.RCPT)
def suppressed(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The recipient asked this sender (or this list) to stop: no grace period."""
    entry = context.suppression
    if entry is None or not context.commercial:
        return []
    return [
        Finding(
            f"recipient suppressed since {entry.received_at.isoformat()} ({entry.reason.value})",
            {
                "suppression_reason": entry.reason.value,
                "suppression_scope": entry.scope.value,
                "suppression_source": entry.source,
                "list_id": entry.list_id,
            },
        )
    ]
