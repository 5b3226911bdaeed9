"""The one way feedback becomes a suppression: the audit record first, then the store entry.

Every source (one-click unsubscribe, mailto unsubscribe, bounces, complaint reports, relay's own
deliveries) builds its entry and record with `suppression` (or `unsubscribe_suppression`) and
calls `suppress`, so every suppression entry has the audit record of the request that caused it.
The record is written and fsync'd before the entry: when the store write then fails, the log
shows a request that the store does not, and the caller answers so that it is retried; an entry
without its record cannot happen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from relay import __version__
from relay.audit.log import AuditLog
from relay.audit.records import AuditEvent
from relay.rewrite.unsubscribe import TokenClaims
from relay.stores.base import Stores
from relay.stores.models import SuppressionEntry, SuppressionReason, SuppressionScope
from relay.stores.stats import Kind, Tally, tally

__all__ = ["suppress", "suppression", "unsubscribe_suppression"]


async def suppress(
    stores: Stores,
    audit: AuditLog,
    entry: SuppressionEntry,
    event: AuditEvent,
    counted_as: Kind | None = None,
) -> None:
    """Record `event`, then add `entry` naming that record (nothing when an entry for the same
    recipient, sender and list is there already); a new entry is counted `counted_as` in the
    list-health figures, under its sender and list.

    Raises AuditError (nothing stored) or StoreUnavailable (recorded, not stored)."""
    (record,) = await audit.append([event])
    added = await stores.add_suppressions([replace(entry, audit_ref=record)])
    if added and counted_as is not None:
        counted = Tally(entry.sender_id, entry.list_id or "", counted_as)
        await tally(stores.stats, entry.received_at, [counted])


def suppression(
    *,
    address_hash: str,
    sender_id: str,
    reason: SuppressionReason,
    source: str,
    at: datetime,
    stage: str,
    detail: str,
    inputs: dict[str, Any],
    address: str | None = None,
    list_id: str | None = None,
    source_message_id: str | None = None,
    queue_id: str | None = None,
) -> tuple[SuppressionEntry, AuditEvent]:
    """The entry that stops mail of `sender_id` (its list `list_id`, if given) to the recipient,
    and the audit record (`stage`, action `suppress`) of what caused it. `address` is the clear
    address, given only where retention allows."""
    scope = SuppressionScope.SENDER if list_id is None else SuppressionScope.LIST
    entry = SuppressionEntry(
        address_hash=address_hash,
        sender_id=sender_id,
        scope=scope,
        reason=reason,
        source=source,
        received_at=at,
        list_id=list_id,
        source_message_id=source_message_id,
        address=address,
    )
    event = AuditEvent(
        time=at.isoformat(),
        stage=stage,
        action="suppress",
        mail_from="",
        recipient_hash=address_hash,
        recipient=address,
        queue_id=queue_id,
        message_id=source_message_id,
        sender_id=sender_id,
        detail=detail,
        inputs={"scope": scope.value, "list_id": list_id, **inputs},
        relay_version=__version__,
    )
    return entry, event


def unsubscribe_suppression(
    claims: TokenClaims,
    *,
    reason: SuppressionReason,
    source: str,
    how: str,
    at: datetime,
    inputs: dict[str, Any],
    source_message_id: str | None = None,
) -> tuple[SuppressionEntry, AuditEvent]:
    """What an unsubscribe request (`how`: "one-click unsubscribe (RFC 8058 POST)", ...) with a
    valid token makes: the list the token names is suppressed, or all of the sender's mail when
    it names none."""
    what = "all mail" if claims.list_id is None else f"list {claims.list_id!r}"
    return suppression(
        address_hash=claims.address_hash,
        sender_id=claims.sender_id,
        reason=reason,
        source=source,
        at=at,
        stage="unsubscribe",
        detail=f"{how}: suppress {what} of sender {claims.sender_id!r}",
        inputs={"token_issued": claims.issued.isoformat(), **inputs},
        list_id=claims.list_id,
        source_message_id=source_message_id,
    )
