"""What a rule may look at. Rules never do I/O: every fact is gathered once into the context
(store records, parsed headers) before the rules run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from relay.policy.standing import SenderStanding
from relay.stores.history import Delivery
from relay.stores.models import ConsentRecord, MessageClass, SenderProfile, SuppressionEntry

if TYPE_CHECKING:  # relay.dnscheck loads checkdmarc; only relays that check DNS need it
    from relay.dnscheck.model import Check, DomainReadiness

__all__ = ["MessageContext"]


@dataclass(frozen=True, slots=True)
class MessageContext:
    now: datetime
    mail_from: str
    recipient: str  # the recipient this context decides for
    jurisdictions: frozenset[str]  # where the recipient's law comes from (strictest wins)
    message_class: MessageClass
    authenticated_as: str | None
    trusted_client: bool  # in [smtp] trusted_networks
    sender: SenderProfile | None  # the sender profile of the credential or From domain
    list_id: str | None  # X-Relay-Campaign / List-Id: which of the sender's lists
    suppression: SuppressionEntry | None
    consents: tuple[ConsentRecord, ...]  # the sender's records for this recipient
    message: EmailMessage | None = None  # parsed headers and body (DATA stage only)
    raw: bytes | None = None  # the message as received (DATA stage only)
    # DNS facts, gathered only when a loaded rule needs them (rules.Fact); None: not checked.
    envelope_spf: Check | None = None  # SPF of the envelope domain for relay's egress
    sender_dns: DomainReadiness | None = None  # the From domain's readiness (DATA stage only)
    # This sender's commercial deliveries to the recipient within the longest cadence window,
    # oldest first (relay.stores.history); None: not gathered.
    send_history: tuple[Delivery, ...] | None = None
    # inspect.content_hash of the message as the sender wrote it, before any fix: what the
    # history records and the duplicate-content rule compares; None: computed from `message`.
    content_hash: str | None = None
    # The sender's pause and complaint rates (relay.policy.standing); None: not gathered.
    sender_standing: SenderStanding | None = None

    @property
    def commercial(self) -> bool:
        return self.message_class in (MessageClass.COMMERCIAL, MessageClass.MIXED)

    def valid_consents(self) -> list[ConsentRecord]:
        """Records that cover this message's list now, not withdrawn, not expired."""
        return [record for record in self.consents if record.covers(self.list_id, self.now)]
