"""Where ingest meets the policy stage: gather the facts once (sender profile, suppression,
consent), run the rules at RCPT and at end of DATA, and write every decision to the audit log.

Order inside a transaction (COMPLIANCE §1.5):
- MAIL: the sender profile is found from the AUTH name, else from the MAIL FROM domain; when a
  loaded rule needs it, the envelope domain's SPF is checked (cached, relay.dnscheck.cache) and
  the sender's standing (pause, complaint rates: relay.policy.standing) is gathered.
- RCPT: suppression and consent are looked up; RCPT-stage rules decide the recipient. A recipient
  whose content rules differ from the first accepted one (other jurisdictions, or affirmative
  consent where the first had none) gets 452 4.5.3 so the client sends it in its own transaction
  (RFC 5321 §4.5.3.1.10). A store that cannot answer gives 451 4.3.0: never fail open.
- DATA: the mailer's declarations (X-Relay-Message-Class, X-Relay-Campaign, X-Relay-Consent-Ref)
  are read, recorded and stripped; the From domain's DNS readiness is gathered when a loaded
  rule needs it; RCPT-stage rules run again with the declared class and list, then DATA-stage
  rules; one reply covers every recipient.
- Every verdict, and the acceptance of each recipient, is appended to the audit log and fsync'd
  before the reply that depends on it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Protocol

from relay import __version__, replies
from relay.audit.records import AuditEvent
from relay.errors import AuditError, StoreUnavailable
from relay.message_parsing import parse_message
from relay.outage import Outage
from relay.policy import inspect
from relay.policy.context import MessageContext
from relay.policy.engine import PolicyEngine
from relay.policy.model import Action, Decision, Stage, Verdict
from relay.policy.rules import Fact
from relay.policy.rules.cadence import history_window
from relay.policy.rules.mailbox_providers import COMPLAINT_RATE, complaint_rate_params
from relay.policy.standing import SenderStanding, Standings
from relay.replies import Reply
from relay.rewrite import Unfixable
from relay.rewrite.pipeline import DEFAULT_AD_PREFIX, Rewriter, ordered_by
from relay.rewrite.plan import FIXES, Fix
from relay.stores.base import Stores
from relay.stores.history import Delivery, DeliveryHistory
from relay.stores.models import ConsentRecord, MessageClass, SenderProfile, SuppressionEntry
from relay.stores.stats import Kind, Tally, destination_of, tally

if TYPE_CHECKING:
    from relay.dnscheck.cache import ReadinessCache
    from relay.dnscheck.model import Check, DomainReadiness

__all__ = ["AuditSink", "Checkpoint", "FixedCopy", "MessageOutcome", "Transaction"]

log = logging.getLogger("relay.policy")

CLASS_HEADER = "X-Relay-Message-Class"
CAMPAIGN_HEADER = "X-Relay-Campaign"
CONSENT_REF_HEADER = "X-Relay-Consent-Ref"
_DECLARATION_HEADERS = (CLASS_HEADER, CAMPAIGN_HEADER, CONSENT_REF_HEADER)
_DECLARATION_LINE = re.compile(
    rb"^(?:" + b"|".join(h.encode() for h in _DECLARATION_HEADERS) + rb")[ \t]*:",
    re.IGNORECASE,
)

STORE_UNAVAILABLE = replies.SPOOL_FAILURE.but(
    "Policy store unavailable; the recipient cannot be checked now, try again later"
)
AUDIT_UNAVAILABLE = replies.SPOOL_FAILURE.but(
    "Audit log unavailable; the decision cannot be recorded now, try again later"
)
DIFFERENT_RULES = replies.TOO_MANY_RECIPIENTS.but(
    "Recipient needs different content rules; send it in a separate transaction"
)
BAD_DECLARATION = Reply(554, "5.6.0", "Bad X-Relay-Message-Class")
_COMMERCIAL = (MessageClass.COMMERCIAL, MessageClass.MIXED)  # as MessageContext.commercial


class AuditSink(Protocol):
    async def append(self, events: Sequence[AuditEvent]) -> Sequence[str]: ...


@dataclass(slots=True)
class _Recipient:
    address: str
    address_hash: str
    suppression: SuppressionEntry | None
    consents: tuple[ConsentRecord, ...]
    jurisdictions: frozenset[str]
    history: tuple[Delivery, ...] | None = None  # Fact.SEND_HISTORY


@dataclass(slots=True)
class Transaction:
    """What the policy stage knows about one SMTP transaction."""

    mail_from: str
    authenticated_as: str | None
    trusted_client: bool
    client_address: str
    sender: SenderProfile | None
    recipients: list[_Recipient] = field(default_factory=list)
    content_key: tuple[frozenset[str], bool] | None = None
    pending_audit: list[AuditEvent] = field(default_factory=list)
    envelope_spf: Check | None = None
    sender_dns: DomainReadiness | None = None
    campaign: str | None = None  # X-Relay-Campaign, known at end of data
    message_class: MessageClass | None = None  # the message's class, known at end of data
    sender_standing: SenderStanding | None = None  # Fact.SENDER_STANDING
    # Of a commercial message whose recipients the delivery history counts once spooled.
    content_hash: str | None = None

    @property
    def stream_class(self) -> MessageClass:
        return self.sender.message_class if self.sender else MessageClass.COMMERCIAL

    @property
    def envelope_domain(self) -> str | None:
        """The MAIL FROM domain receivers see: the sender's VERP bounce domain, else the
        mailer's MAIL FROM domain; None for the null reverse path."""
        if not self.mail_from:
            return None
        if self.sender is not None and self.sender.bounce_domain:
            return self.sender.bounce_domain
        return self.mail_from.rpartition("@")[2].lower().rstrip(".")


@dataclass(frozen=True, slots=True)
class FixedCopy:
    """One recipient's copy of a message the rewrite stage fixed: spooled on its own, with its
    own audit events (the verdicts, one `fix` record per change, the acceptance)."""

    recipient: str
    recipient_hash: str
    content: bytes
    events: tuple[AuditEvent, ...]


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """The end-of-data decision: a refusal reply, or the content to spool (declarations
    stripped) and the audit events to write with the queue id once it is known. When fixes
    were made, `copies` holds one message per recipient instead, `content` and `events` unused."""

    refusal: Reply | None
    content: bytes
    events: tuple[AuditEvent, ...]
    copies: tuple[FixedCopy, ...] = ()
    # Recipients a `hold` verdict keeps in the spool: address -> first delivery (epoch seconds).
    holds: Mapping[str, float] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


def _strip_declarations(content: bytes) -> bytes:
    """Remove the X-Relay-* header fields (with their folded lines) from the header section."""
    end = content.find(b"\r\n\r\n")
    header, body = (content, b"") if end < 0 else (content[: end + 2], content[end + 2 :])
    kept: list[bytes] = []
    dropping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = bool(_DECLARATION_LINE.match(line))
        if not dropping:
            kept.append(line)
    return b"".join(kept) + body


def _header(message: EmailMessage, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # the email package raises many kinds of error on broken headers
        return None
    return None if value is None else " ".join(str(value).split())


class Checkpoint:
    def __init__(
        self,
        engine: PolicyEngine,
        stores: Stores,
        audit: AuditSink,
        hash_address: Callable[[str], str],
        keep_addresses: bool,
        rewriter: Rewriter | None = None,
        readiness: ReadinessCache | None = None,
        history: DeliveryHistory | None = None,
    ) -> None:
        self._engine = engine
        self._stores = stores
        self._stores_outage = Outage(log, "store lookups", "MAIL and RCPT are answered 451 4.3.0")
        self._audit = audit
        self._hash = hash_address
        self._keep_addresses = keep_addresses
        self._rewriter = rewriter
        # The DNS facts that loaded rules read; None: none, or no DNS (tools and benchmarks).
        self._readiness = readiness
        self._needs_spf = readiness is not None and engine.needs(Fact.ENVELOPE_SPF)
        self._needs_sender_dns = readiness is not None and engine.needs(Fact.SENDER_DNS)
        # None: no loaded rule reads it, or no history (tools and benchmarks).
        self._history = history if engine.needs(Fact.SEND_HISTORY) else None
        self._history_window = history_window(engine.policies)
        complaint = complaint_rate_params(engine.policies)
        self._standings = (
            None
            if complaint is None
            else Standings(
                stores,
                audit,
                complaint["windows"],
                complaint["pause_at"],
                complaint["min_delivered"],
                COMPLAINT_RATE,
            )
        )
        self._jurisdictions = {policy.path.name: policy.jurisdiction for policy in engine.policies}
        self._params = {
            (policy.path.name, binding.rule_id): binding.params
            for policy in engine.policies
            for binding in policy.bindings
        }

    @property
    def decides_line_length(self) -> bool:
        """RFC-5322-LINELEN is bound: the policy stage fixes or refuses over-long lines, so
        ingest need not refuse them itself."""
        return self._engine.binds("RFC-5322-LINELEN")

    # -- MAIL -------------------------------------------------------------------------------

    async def begin(
        self,
        mail_from: str,
        authenticated_as: str | None,
        trusted_client: bool,
        client_address: str,
    ) -> Transaction | Reply:
        try:
            sender = None
            if authenticated_as is not None:
                sender = await self._stores.sender_for_user(authenticated_as)
            if sender is None and mail_from:
                sender = await self._stores.sender_for_domain(mail_from.rpartition("@")[2])
            standing = None
            if self._standings is not None and sender is not None:
                standing = await self._standings.of(sender.sender_id)
        except StoreUnavailable as exc:
            self._stores_outage.failed(f"sender profile lookup for <{mail_from}>: {exc}")
            return STORE_UNAVAILABLE
        self._stores_outage.answered()
        transaction = Transaction(
            mail_from, authenticated_as, trusted_client, client_address, sender
        )
        transaction.sender_standing = standing
        envelope_domain = transaction.envelope_domain
        if self._needs_spf and envelope_domain:
            assert self._readiness is not None
            transaction.envelope_spf = await self._readiness.envelope_spf(envelope_domain)
        return transaction

    # -- RCPT -------------------------------------------------------------------------------

    async def recipient(self, transaction: Transaction, address: str) -> Reply:
        """Decide one recipient; on acceptance it joins the transaction. A refusal is in the
        audit log before its reply; an acceptance is recorded with the message at DATA."""
        sender_id = transaction.sender.sender_id if transaction.sender else ""
        address_hash = self._hash(address)
        try:
            # The history is another database on another thread: ask it while the stores answer.
            suppression, consents, history = await _all(
                self._stores.suppression_for(address, sender_id, None),
                self._stores.consents_for(address, sender_id),
                self._recent_sends(address, sender_id),
            )
        except StoreUnavailable as exc:
            self._stores_outage.failed(f"lookup for <{address}>: {exc}")
            refused = self._event(transaction, Stage.RCPT, address, address_hash, "refuse")
            failure = await self.record(
                [refused.updated(reply=str(STORE_UNAVAILABLE), detail=str(exc))]
            )
            return failure or STORE_UNAVAILABLE
        self._stores_outage.answered()
        jurisdictions = self._engine.jurisdictions(address, consents, transaction.sender)
        candidate = _Recipient(
            address, address_hash, suppression, tuple(consents), jurisdictions, history
        )
        context = self._context(transaction, candidate, transaction.stream_class, None)
        decision = self._engine.evaluate(Stage.RCPT, context)
        refusal = decision.refusal
        events = self._verdict_events(transaction, Stage.RCPT, candidate, decision)
        if refusal is not None:
            assert refusal.reply is not None
            return await self.record(events) or refusal.reply
        key = (jurisdictions, any(r.basis.affirmative for r in context.valid_consents()))
        if transaction.content_key is not None and key != transaction.content_key:
            split = self._event(transaction, Stage.RCPT, address, address_hash, "defer")
            split = split.updated(
                reply=str(DIFFERENT_RULES),
                detail="content rules differ from the first accepted recipient",
                inputs={"jurisdictions": sorted(jurisdictions)},
            )
            return await self.record([*events, split]) or DIFFERENT_RULES
        transaction.content_key = key
        transaction.recipients.append(candidate)
        transaction.pending_audit.extend(events)
        return replies.RECIPIENT_OK

    async def _recent_sends(self, address: str, sender_id: str) -> tuple[Delivery, ...] | None:
        """What relay sent `address` for `sender_id` within the longest cadence window; None
        when no loaded rule reads the history."""
        if self._history is None:
            return None
        since = _now() - self._history_window
        return tuple(await self._history.recent(address, sender_id, since))

    # -- DATA -------------------------------------------------------------------------------

    async def message(self, transaction: Transaction, content: bytes) -> MessageOutcome:
        message = parse_message(content)
        declared_class = _header(message, CLASS_HEADER)
        list_id = _header(message, CAMPAIGN_HEADER)
        transaction.campaign = list_id
        consent_ref = _header(message, CONSENT_REF_HEADER)
        declarations = {
            "declared_class": declared_class,
            "campaign": list_id,
            "consent_ref": consent_ref,
            "message_id": _header(message, "Message-ID"),
        }
        if declared_class is not None and declared_class.lower() not in set(MessageClass):
            allowed = ", ".join(MessageClass)
            bad = BAD_DECLARATION.but(f"{CLASS_HEADER} must be one of: {allowed}")
            return MessageOutcome(bad, content, ())
        message_class = (
            MessageClass(declared_class.lower()) if declared_class else transaction.stream_class
        )
        transaction.message_class = message_class
        counted = self._history is not None and message_class in _COMMERCIAL
        transaction.content_hash = inspect.content_hash(message) if counted else None
        sender_id = transaction.sender.sender_id if transaction.sender else ""
        if self._needs_sender_dns:
            assert self._readiness is not None
            authors = {inspect.domain_of(address) for address in inspect.addresses(message, "From")}
            if len(authors) == 1:
                transaction.sender_dns = await self._readiness.sender(
                    authors.pop(), transaction.envelope_domain or ""
                )
        decision = Decision()
        events: list[AuditEvent] = []
        decided: list[tuple[_Recipient, Decision]] = []
        for recipient in transaction.recipients:
            if list_id is not None:
                try:
                    suppression = await self._stores.suppression_for(
                        recipient.address, sender_id, list_id
                    )
                except StoreUnavailable as exc:
                    self._stores_outage.failed(f"lookup for <{recipient.address}>: {exc}")
                    return MessageOutcome(STORE_UNAVAILABLE, content, ())
                recipient = replace(recipient, suppression=suppression)
            context = self._context(transaction, recipient, message_class, list_id)
            context = replace(context, message=message, raw=content)
            again = self._engine.evaluate(Stage.RCPT, context)
            verdicts = self._engine.evaluate(Stage.DATA, context) + again
            decision += verdicts
            decided.append((recipient, verdicts))
            events.extend(self._verdict_events(transaction, Stage.DATA, recipient, verdicts))
        refusal = decision.refusal
        message_id = declarations["message_id"]
        holds = _holds(decided)
        if refusal is not None and self._rewriter is not None and _only_fixes(decision):
            fixed = self._fixed(
                self._rewriter,
                transaction,
                decided,
                decision,
                _strip_declarations(content),
                message_class,
                list_id,
                declarations,
            )
            return fixed if fixed.refusal is not None else replace(fixed, holds=holds)
        events = [event.updated(message_id=message_id) for event in events]
        if refusal is None:
            inputs: dict[str, Any] = {k: v for k, v in declarations.items() if v is not None}
            inputs["message_class"] = message_class.value
            events.extend(
                self._accepted(transaction, recipient, message_id, inputs)
                for recipient in transaction.recipients
            )
        return MessageOutcome(
            refusal.reply if refusal else None,
            _strip_declarations(content),
            tuple(events),
            holds=holds,
        )

    def _fixed(
        self,
        rewriter: Rewriter,
        transaction: Transaction,
        decided: list[tuple[_Recipient, Decision]],
        decision: Decision,
        content: bytes,
        message_class: MessageClass,
        list_id: str | None,
        declarations: dict[str, str | None],
    ) -> MessageOutcome:
        """The rewrite stage: every refusing verdict orders a fix. Make one fixed copy per
        recipient and run the rules again on it; refuse with the rule's reply when a fix cannot
        be made (no aligned key, the sender's choice, Unfixable) or a rule still refuses."""
        message_id = declarations["message_id"]
        refusing = [verdict for verdict in decision.verdicts if verdict.action.refuses]
        needed = [(v.rule_id, self._jurisdictions.get(v.policy)) for v in refusing]
        fix_plan = rewriter.plan(needed, transaction.sender, content)
        if fix_plan.refused or not fix_plan.fixes or transaction.sender is None:
            refused = set(fix_plan.refused)
            first = next((v for v in refusing if v.rule_id in refused), decision.refusal)
            detail = "no fix made: " + (
                "no aligned DKIM key for the From domain, or the sender does not allow it"
            )
            return self._refused(transaction, decided, first, message_id, detail)
        now = _now()
        new_id = message_id or rewriter.message_id(content)
        order = ordered_by([rule_id for rule_id, _ in needed], fix_plan.fixes)
        prefix = next(
            (
                str(self._params.get((v.policy, v.rule_id), {}).get("prefix", DEFAULT_AD_PREFIX))
                for v in refusing
                if Fix.SUBJECT_PREFIX in FIXES.get(v.rule_id, ())
            ),
            DEFAULT_AD_PREFIX,
        )
        inputs: dict[str, Any] = {k: v for k, v in declarations.items() if v is not None}
        inputs["message_class"] = message_class.value
        inputs["message_id"] = new_id
        inputs["fixes"] = [fix.value for fix in fix_plan.fixes]
        copies: list[FixedCopy] = []
        for recipient, verdicts in decided:
            made = rewriter.apply(
                content,
                fix_plan.fixes,
                ordered_by=order,
                sender=transaction.sender,
                address_hash=recipient.address_hash,
                list_id=list_id,
                ad_prefix=prefix,
                now=now,
                message_id=new_id,
            )
            if isinstance(made, Unfixable):
                first = next((v for v in refusing if v.rule_id == made.rule_id), decision.refusal)
                return self._refused(
                    transaction, decided, first, message_id, f"cannot fix: {made.detail}"
                )
            fixed = parse_message(made.content)
            context = self._context(transaction, recipient, message_class, list_id)
            context = replace(context, message=fixed, raw=made.content)
            again = self._engine.evaluate(Stage.DATA, context) + self._engine.evaluate(
                Stage.RCPT, context
            )
            base = self._event(
                transaction, Stage.DATA, recipient.address, recipient.address_hash, "fix"
            ).updated(message_id=new_id)
            events = [
                event.updated(message_id=new_id)
                for event in self._events_for(transaction, Stage.DATA, recipient, verdicts, None)
            ]
            events.extend(change.audit(base) for change in made.changes)
            if again.refusal is not None:
                assert again.refusal.reply is not None
                events.extend(
                    event.updated(message_id=new_id, detail=f"after the fixes: {event.detail}")
                    for event in self._verdict_events(transaction, Stage.DATA, recipient, again)
                    if event.action != Action.WARN.value
                )
                done = [event for copy in copies for event in copy.events]
                return MessageOutcome(again.refusal.reply, content, (*done, *events))
            events.append(self._accepted(transaction, recipient, new_id, inputs))
            copies.append(
                FixedCopy(recipient.address, recipient.address_hash, made.content, tuple(events))
            )
        return MessageOutcome(None, content, (), tuple(copies))

    def _refused(
        self,
        transaction: Transaction,
        decided: list[tuple[_Recipient, Decision]],
        refusal: Verdict | None,
        message_id: str | None,
        detail: str,
    ) -> MessageOutcome:
        """Refuse with `refusal`'s reply, every verdict recorded as without the rewrite stage."""
        assert refusal is not None
        assert refusal.reply is not None
        events = [
            event.updated(message_id=message_id)
            for recipient, verdicts in decided
            for event in self._events_for(transaction, Stage.DATA, recipient, verdicts, refusal)
        ]
        log.info("fix refused (%s): %s", refusal.rule_id, detail)
        return MessageOutcome(refusal.reply, b"", tuple(events))

    async def record(
        self, events: Sequence[AuditEvent], campaign: str | None = None
    ) -> Reply | None:
        """Append to the audit log; a failure is the reply to send instead of going on. Each
        recipient refused by a rule is then counted under the rule and `campaign`."""
        try:
            await self._audit.append(events)
        except AuditError as exc:
            log.error("audit log append failed, answered 451: %s", exc)
            return AUDIT_UNAVAILABLE
        refused: Counter[tuple[str, str, str]] = Counter()
        for event in events:
            if event.reply is not None and event.sender_id and event.rule_id:
                # By destination where the clear address is kept ([audit] keep_addresses).
                destination = destination_of(event.recipient) if event.recipient else ""
                refused[event.sender_id, event.rule_id, destination] += 1
        await tally(
            self._stores.stats,
            _now(),
            [
                Tally(sender_id, campaign or "", Kind.REFUSED, n, rule_id, destination)
                for (sender_id, rule_id, destination), n in refused.items()
            ],
        )
        return None

    async def delivered(
        self, transaction: Transaction, spooled: Sequence[tuple[str, Sequence[str]]]
    ) -> Reply | None:
        """Count the spooled recipients ((queue id, recipients) per queue file) of a commercial
        message in the delivery history; a failure is the reply to send instead (the caller
        withdraws the message: a recipient the caps cannot count is not accepted)."""
        if self._history is None or transaction.content_hash is None:
            return None
        hashes = {recipient.address: recipient.address_hash for recipient in transaction.recipients}
        sender_id = transaction.sender.sender_id if transaction.sender else ""
        now = _now()
        try:
            await self._history.record(
                Delivery(
                    sender_id,
                    hashes[address],
                    now,
                    queue_id,
                    transaction.campaign,
                    transaction.content_hash,
                )
                for queue_id, recipients in spooled
                for address in recipients
            )
        except StoreUnavailable as exc:
            log.error("delivery history not written, answered 451: %s", exc)
            return STORE_UNAVAILABLE
        return None

    async def flush(self, transaction: Transaction) -> None:
        """Write the RCPT-time decisions of a transaction that ends without a message."""
        if transaction.pending_audit:
            events, transaction.pending_audit = transaction.pending_audit, []
            await self.record(events)

    # -- helpers ----------------------------------------------------------------------------

    def _context(
        self,
        transaction: Transaction,
        recipient: _Recipient,
        message_class: MessageClass,
        list_id: str | None,
    ) -> MessageContext:
        return MessageContext(
            now=_now(),
            mail_from=transaction.mail_from,
            recipient=recipient.address,
            jurisdictions=recipient.jurisdictions,
            message_class=message_class,
            authenticated_as=transaction.authenticated_as,
            trusted_client=transaction.trusted_client,
            sender=transaction.sender,
            list_id=list_id,
            suppression=recipient.suppression,
            consents=recipient.consents,
            envelope_spf=transaction.envelope_spf,
            sender_dns=transaction.sender_dns,
            send_history=recipient.history,
            content_hash=transaction.content_hash,
            sender_standing=transaction.sender_standing,
        )

    def _event(
        self,
        transaction: Transaction,
        stage: Stage,
        address: str,
        address_hash: str,
        action: str,
    ) -> AuditEvent:
        return AuditEvent(
            time=_now().isoformat(),
            stage=stage.value,
            action=action,
            mail_from=transaction.mail_from,
            recipient_hash=address_hash,
            recipient=address if self._keep_addresses else None,
            sender_id=transaction.sender.sender_id if transaction.sender else None,
            relay_version=__version__,
        )

    def _accepted(
        self,
        transaction: Transaction,
        recipient: _Recipient,
        message_id: str | None,
        inputs: dict[str, Any],
    ) -> AuditEvent:
        """The acceptance of `recipient`, with what the decision rested on."""
        accepted = self._event(
            transaction, Stage.DATA, recipient.address, recipient.address_hash, "accept"
        )
        return accepted.updated(
            message_id=message_id,
            inputs=inputs
            | {
                "jurisdictions": sorted(recipient.jurisdictions),
                "consent_records": [record.record_id for record in recipient.consents],
            },
        )

    def _verdict_events(
        self,
        transaction: Transaction,
        stage: Stage,
        recipient: _Recipient,
        decision: Decision,
    ) -> list[AuditEvent]:
        return self._events_for(transaction, stage, recipient, decision, decision.refusal)

    def _events_for(
        self,
        transaction: Transaction,
        stage: Stage,
        recipient: _Recipient,
        decision: Decision,
        refusal: Verdict | None,
    ) -> list[AuditEvent]:
        """One event per verdict; `refusal`'s carries the reply."""
        return [
            self._event(
                transaction, stage, recipient.address, recipient.address_hash, verdict.action.value
            ).updated(**_verdict_fields(verdict, refusal))
            for verdict in decision.verdicts
        ]


def _verdict_fields(verdict: Verdict, refusal: Verdict | None) -> dict[str, Any]:
    return {
        "rule_id": verdict.rule_id,
        "citation": verdict.citation,
        "policy": verdict.policy,
        "detail": verdict.detail,
        "inputs": dict(verdict.inputs),
        "reply": str(verdict.reply) if verdict is refusal and verdict.reply else None,
    }


def _holds(decided: list[tuple[_Recipient, Decision]]) -> dict[str, float]:
    """The first delivery time of each recipient a `hold` verdict keeps: the latest release."""
    holds: dict[str, float] = {}
    for recipient, decision in decided:
        for verdict in decision.verdicts:
            if verdict.action is Action.HOLD:
                release = datetime.fromisoformat(str(verdict.inputs["release_at"])).timestamp()
                holds[recipient.address] = max(release, holds.get(recipient.address, release))
    return holds


def _fixable(verdict: Verdict) -> bool:
    """A refusing verdict the rewrite stage may answer with a fix: a `fix` action, or a finding
    of RFC-5322-REQUIRED / RFC-5322-LINELEN whose remedy is "fix" (one id binds one action)."""
    if verdict.action is Action.FIX:
        return True
    return verdict.rule_id in FIXES and verdict.inputs.get("remedy") == "fix"


def _only_fixes(decision: Decision) -> bool:
    return all(_fixable(verdict) for verdict in decision.verdicts if verdict.action.refuses)


async def _all(*lookups: Awaitable[Any]) -> list[Any]:
    """The lookups' results, asked concurrently; the first failure is raised once they have all
    finished (none is left running unobserved)."""
    results = await asyncio.gather(*lookups, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results
