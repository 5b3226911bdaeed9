"""Which addresses the feedback listener receives mail for, and what mail to each one is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from relay.rewrite.unsubscribe import MAILBOX
from relay.rewrite.verp import parse_verp
from relay.stores.base import Stores
from relay.stores.models import SenderProfile

__all__ = ["Found", "Mailbox", "Mailboxes"]


class Mailbox(StrEnum):
    BOUNCE = "bounce"  # a VERP return path under a sender's bounce domain
    UNSUBSCRIBE = "unsubscribe"  # unsubscribe@<[rewrite] unsubscribe_mailto_domain>
    COMPLAINT = "complaint"  # one of [feedback] complaint_addresses (feedback loops)


@dataclass(frozen=True, slots=True)
class Found:
    mailbox: Mailbox
    sender: SenderProfile | None = None  # the owner of the bounce domain, for BOUNCE


class Mailboxes:
    """The feedback addresses: VERP return paths of every sender profile with a bounce domain
    (looked up in the stores), the unsubscribe mailbox and the complaint addresses."""

    def __init__(
        self, stores: Stores, unsubscribe_domain: str, complaint_addresses: Iterable[str]
    ) -> None:
        self._stores = stores
        self._unsubscribe = f"{MAILBOX}@{unsubscribe_domain.lower()}"
        self._complaints = frozenset(address.lower() for address in complaint_addresses)

    async def find(self, address: str) -> Found | None:
        """What `address` is; None when relay receives no mail for it. Raises
        StoreUnavailable."""
        key = address.strip().lower()
        if key == self._unsubscribe:
            return Found(Mailbox.UNSUBSCRIBE)
        if key in self._complaints:
            return Found(Mailbox.COMPLAINT)
        if parse_verp(address) is None:
            return None
        sender = await self._stores.sender_for_bounce_domain(key.rpartition("@")[2])
        return Found(Mailbox.BOUNCE, sender) if sender is not None else None
