"""The one way feedback becomes a suppression: the audit record first, then the store entry.

Every source (one-click unsubscribe, mailto unsubscribe, bounces, complaint reports) calls
`suppress`, so every suppression entry has the audit record of the request that caused it. The
record is written and fsync'd before the entry: when the store write then fails, the log shows a
request that the store does not, and the caller answers so that it is retried; an entry without
its record cannot happen.
"""

from __future__ import annotations

from relay.audit.log import AuditLog
from relay.audit.records import AuditEvent
from relay.stores.base import Stores
from relay.stores.models import SuppressionEntry

__all__ = ["suppress"]


async def suppress(
    stores: Stores, audit: AuditLog, entry: SuppressionEntry, event: AuditEvent
) -> None:
    """Record `event`, then add `entry` (nothing when an equal entry is there already).

    Raises AuditError (nothing stored) or StoreUnavailable (recorded, not stored)."""
    await audit.append([event])
    await stores.add_suppressions([entry])
