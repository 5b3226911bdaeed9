"""What relay learns from its own deliveries: a recipient refused permanently as unknown is
suppressed like a hard bounce, and the outcomes are counted per sender, campaign and destination
(the recipient's domain): delivered, deferred, hard and soft bounces (relay.stores.stats).
Called by the queue manager after it recorded the outcomes of an attempt."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from relay.audit.log import AuditLog
from relay.errors import AuditError, StoreUnavailable
from relay.feedback.suppress import suppress, suppression
from relay.spool.records import DeliveryResult, Envelope, Outcome, RecipientState
from relay.stores.base import Stores
from relay.stores.models import SuppressionReason
from relay.stores.stats import Kind, Tally, destination_of, tally

__all__ = ["USER_UNKNOWN_STATUSES", "DeliveryFeedback"]

log = logging.getLogger("relay.feedback")

# RFC 3463 X.1.1 bad mailbox, X.1.2 bad system, X.1.6 mailbox moved; RFC 7505 X.1.10 null MX.
USER_UNKNOWN_STATUSES = frozenset({"5.1.1", "5.1.2", "5.1.6", "5.1.10"})


class DeliveryFeedback:
    def __init__(
        self,
        stores: Stores,
        audit: AuditLog,
        hash_address: Callable[[str], str],
        keep_addresses: bool,
    ) -> None:
        self._stores = stores
        self._audit = audit
        self._hash = hash_address
        self._keep_addresses = keep_addresses

    async def record(self, envelope: Envelope, outcomes: Sequence[Outcome]) -> None:
        """Count the outcomes and suppress the unknown recipients of `envelope`'s sender;
        logs (never raises) when the stores or the audit log cannot be written."""
        sender_id = envelope.sender_id
        if sender_id is None:
            return
        now = datetime.now(UTC)
        kinds = Counter(
            (kind, destination_of(address))
            for address, state, result, _ in outcomes
            for kind in _kinds(state, result)
        )
        campaign = envelope.campaign or ""
        await tally(
            self._stores.stats,
            now,
            [
                Tally(sender_id, campaign, kind, n, destination=destination)
                for (kind, destination), n in kinds.items()
            ],
        )
        try:
            unknown = [
                (address, result)
                for address, state, result, _ in outcomes
                if state is RecipientState.BOUNCED and result.status in USER_UNKNOWN_STATUSES
            ]
            for address, result in unknown:
                entry, event = suppression(
                    address_hash=self._hash(address),
                    address=address if self._keep_addresses else None,
                    sender_id=sender_id,
                    reason=SuppressionReason.HARD_BOUNCE,
                    source="delivery",
                    at=now,
                    stage="queue",
                    detail=f"delivery failed permanently ({result.status}, recipient unknown):"
                    f" suppress all mail of sender {sender_id!r}",
                    inputs={
                        "status": result.status,
                        "diagnostic": result.diagnostic,
                        "remote_mta": result.remote_mta,
                    },
                    queue_id=envelope.queue_id,
                )
                await suppress(self._stores, self._audit, entry, event)
                log.info("%s: <%s> suppressed: %s", envelope.queue_id, address, event.detail)
        except (AuditError, StoreUnavailable) as exc:
            log.error(
                "%s: delivery feedback of sender %s not recorded (suppressions of unknown"
                " recipients): %s; check the stores and the audit log",
                envelope.queue_id,
                sender_id,
                exc,
            )


def _kinds(state: RecipientState, result: DeliveryResult) -> tuple[Kind, ...]:
    """What one attempt for one recipient counts as (see relay.stores.stats)."""
    if result.success:
        return (Kind.DELIVERED,)
    if result.permanent:
        return (Kind.HARD_BOUNCE,)
    deferred = (Kind.DEFERRED,) if state is RecipientState.QUEUED else ()
    return (Kind.SOFT_BOUNCE, *deferred) if result.remote_mta is not None else deferred
