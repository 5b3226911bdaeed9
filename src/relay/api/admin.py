"""What the admin API's routes work on: the node's stores, spool, queue and audit log, and how
an admin action is written to the audit log.

Every change made through the API is audited (stage "admin"): the record names the action, the
token that asked (id, name, role), the sender and recipient concerned, and what was changed. As
everywhere in relay (relay.feedback.suppress), the record is written before the change: when the
change then fails, the log shows a request the stores do not, and the client is answered 503 so
that it asks again; a change without its record cannot happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from relay import __version__
from relay.api.auth import Authenticator, Principal
from relay.audit.log import AuditLog
from relay.audit.records import AuditEvent
from relay.config.model import Settings
from relay.delivery.queue_manager import QueueManager
from relay.metrics import DestinationFigures, QueueFigures
from relay.signing.keys import KeyRing
from relay.spool.store import Spool
from relay.stores.base import Stores
from relay.stores.hashing import AddressHasher

__all__ = ["Admin"]


@dataclass(frozen=True, slots=True)
class Admin:
    settings: Settings
    stores: Stores
    hasher: AddressHasher
    audit: AuditLog
    spool: Spool
    queue: QueueManager
    keyring: KeyRing
    auth: Authenticator

    @property
    def keep_addresses(self) -> bool:
        return self.settings.audit.keep_addresses

    def event(
        self,
        principal: Principal,
        action: str,
        detail: str,
        *,
        sender_id: str | None = None,
        address: str | None = None,
        address_hash: str | None = None,
        queue_id: str | None = None,
        rule_id: str | None = None,
        citation: str | None = None,
        inputs: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        """The audit record of an admin action by `principal` (e.g. "suppression-add"); the
        recipient by `address` (hashed; kept in clear only where retention allows) or by its
        `address_hash`."""
        if address is not None:
            address_hash = self.hasher.hash(address)
        return AuditEvent(
            time=(at or datetime.now(UTC)).isoformat(),
            stage="admin",
            action=action,
            mail_from="",
            recipient_hash=address_hash or "",
            recipient=address if self.keep_addresses else None,
            queue_id=queue_id,
            rule_id=rule_id,
            citation=citation,
            detail=detail,
            inputs={**principal.audit_inputs(), **(inputs or {})},
            sender_id=sender_id,
            relay_version=__version__,
        )

    async def queue_figures(self) -> QueueFigures:
        """The queue as /metrics shows it."""
        counts = await self.spool.counts()
        snapshot = self.queue.snapshot()
        return QueueFigures(
            messages=counts.messages,
            recipients=counts.recipients,
            held=counts.held,
            sleeping=snapshot.sleeping,
            running=snapshot.running,
            destinations=[
                DestinationFigures(
                    name=state.name,
                    waiting=state.waiting,
                    active=state.active,
                    pace=state.pace,
                    suspended=state.suspended_until is not None,
                    paused_senders=len(state.paused_senders),
                )
                for state in snapshot.destinations
            ],
        )

    async def record(self, *events: AuditEvent) -> list[str]:
        """Write `events` (fsync'd) and return their hashes; AuditError (503) when it cannot."""
        return await self.audit.append(events)
