"""European Union: GDPR, ePrivacy Directive Art. 13, E-Commerce Directive (COMPLIANCE §3).

Consent is read from the sender's records for the recipient. A record is a basis for marketing
only if it was an affirmative, unbundled act (GDPR Art. 4(11), 7(2),(4)); soft opt-in is the
separate basis of ePrivacy Art. 13(2). The suppression rule EU-OBJECTION-STOP lives in
common.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, PositiveInt

from relay.policy import inspect
from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage
from relay.policy.rules import rule
from relay.stores.models import ConsentBasis, ConsentRecord

_OPT_IN = (ConsentBasis.EXPRESS_OPTIN, ConsentBasis.CONFIRMED_OPTIN)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SoftOptinParams(_Params):
    # Member states that limit how long after the sale soft opt-in lasts; None: no limit.
    max_age_days: PositiveInt | None = None


class MarkerParams(_Params):
    # What identifies mail as commercial communication, in the Subject or the body.
    markers: list[str] = ["Ad:", "[Ad]", "Advertisement", "Werbung", "Publicité", "Publicidad"]


def _opt_ins(context: MessageContext) -> list[ConsentRecord]:
    """Valid express/confirmed opt-ins that were an affirmative, unbundled act."""
    return [
        record
        for record in context.valid_consents()
        if record.basis in _OPT_IN and record.affirmative_action and not record.bundled
    ]


def _soft_optins(context: MessageContext) -> list[ConsentRecord]:
    return [r for r in context.valid_consents() if r.basis is ConsentBasis.SOFT_OPTIN_CUSTOMER]


def _considered(context: MessageContext) -> list[dict[str, object]]:
    """The sender's records for the recipient, as the audit log should see them."""
    return [
        {
            "record_id": record.record_id,
            "basis": record.basis.value,
            "covers": record.covers(context.list_id, context.now),
            "affirmative_action": record.affirmative_action,
            "bundled": record.bundled,
        }
        for record in context.consents
    ]


@rule("EU-EPR-CONSENT", Stage.RCPT)
def epr_consent(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Marketing to an EU recipient needs prior consent (an affirmative, unbundled express or
    confirmed opt-in covering this list) or a soft opt-in record (checked by
    EU-EPR-SOFT-OPTIN)."""
    if not context.commercial or _opt_ins(context) or _soft_optins(context):
        return []
    return [
        Finding(
            "no valid consent or soft opt-in for this recipient and list",
            {"list_id": context.list_id, "consents": _considered(context)},
        )
    ]


@rule("EU-EPR-SOFT-OPTIN", Stage.RCPT, params=SoftOptinParams)
def epr_soft_optin(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """When soft opt-in is the only basis, the record shows the sale it came from (product
    category) and, where the member state limits it, is recent enough."""
    if not context.commercial or _opt_ins(context):
        return []
    records = _soft_optins(context)
    if not records:
        return []  # EU-EPR-CONSENT reports the missing basis
    max_age = params["max_age_days"]
    usable = [
        record
        for record in records
        if record.product_category
        and (max_age is None or context.now - record.obtained_at <= timedelta(days=max_age))
    ]
    if usable:
        return []
    return [
        Finding(
            "soft opt-in without the product category of the sale, or older than allowed",
            {
                "max_age_days": max_age,
                "records": [
                    {
                        "record_id": record.record_id,
                        "product_category": record.product_category,
                        "obtained_at": record.obtained_at.isoformat(),
                    }
                    for record in records
                ],
            },
        )
    ]


@rule("EU-CONSENT-PROOF", Stage.RCPT)
def consent_proof(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The records this message relies on can be demonstrated: mechanism, evidence and notice
    version. Import refuses new records without them; this finds legacy ones."""
    if not context.commercial:
        return []
    lacking = {
        record.record_id: [
            name
            for name, value in (
                ("source", record.source),
                ("evidence_ref", record.evidence_ref),
                ("notice_version", record.notice_version),
            )
            if not (value or "").strip()
        ]
        for record in context.valid_consents()
    }
    lacking = {record_id: missing for record_id, missing in lacking.items() if missing}
    if not lacking:
        return []
    return [Finding("consent records without proof: " + ", ".join(lacking), {"missing": lacking})]


@rule("EU-WITHDRAW-EASY", Stage.DATA)
def withdraw_easy(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Withdrawing is as easy as consenting: a one-click List-Unsubscribe (RFC 8058) and an
    unsubscribe link in every text part."""
    if not context.commercial:
        return []
    parts = inspect.text_parts(context.message)
    lacking = [p.content_type for p in parts if not inspect.mentions_unsubscribe(p, True)]
    problems = []
    if not inspect.one_click(context.message):
        problems.append(
            "no one-click unsubscribe (https List-Unsubscribe and "
            f"List-Unsubscribe-Post: {inspect.ONE_CLICK})"
        )
    if not parts:
        problems.append("no text part to carry an unsubscribe link")
    if lacking:
        problems.append(f"no unsubscribe link in {', '.join(lacking)}")
    inputs = {
        **inspect.unsubscribe_headers(context.message),
        "parts": [part.content_type for part in parts],
    }
    return inspect.problems_finding(problems, inputs)


@rule("EU-OBJECTION-NOTICE", Stage.DATA)
def objection_notice(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The body tells the reader, visibly, that they can object to (opt out of) marketing."""
    if not context.commercial:
        return []
    parts = inspect.text_parts(context.message)
    if any(inspect.mentions_unsubscribe(part) for part in parts):
        return []
    return [
        Finding(
            "no opt-out statement in the body",
            {
                "parts": [part.content_type for part in parts],
                "list_unsubscribe": inspect.list_unsubscribe(context.message),
            },
        )
    ]


@rule("EU-EPR-IDENTITY", Stage.DATA)
def epr_identity(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The sender is not disguised: every From address is in the sender's verified domains."""
    if not context.commercial:
        return []
    if context.sender is None:
        return [inspect.no_sender(context)]
    verified = context.sender.verified_domains
    senders = inspect.addresses(context.message, "From")
    inputs = {"from": senders, "verified_domains": list(verified)}
    if not senders:
        return [Finding("the message has no From address", inputs)]
    foreign = inspect.foreign_addresses(senders, verified)
    if foreign:
        return [
            Finding(f"From is not a verified domain of the sender: {', '.join(foreign)}", inputs)
        ]
    return []


@rule("EU-EPR-IDENTITY-FOOTER", Stage.DATA)
def epr_identity_footer(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The sender's legal name (the controller) appears in the body."""
    if not context.commercial:
        return []
    if context.sender is None:
        return [inspect.no_sender(context)]
    parts = inspect.text_parts(context.message)
    if inspect.in_body_text(parts, context.sender.legal_name):
        return []
    return [
        Finding(
            "the sender's legal name is not in the body",
            {"legal_name": context.sender.legal_name, "parts": [p.content_type for p in parts]},
        )
    ]


@rule("EU-ECOM-IDENTIFIABLE", Stage.DATA, params=MarkerParams)
def ecom_identifiable(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Unsolicited commercial mail (no opt-in: soft opt-in or B2B) is identifiable as such by a
    configured marker in the Subject or the body."""
    if not context.commercial or _opt_ins(context):
        return []
    if inspect.has_marker(context.message, params["markers"]):
        return []
    return [
        Finding(
            "unsolicited commercial mail without a commercial-communication marker",
            {"subject": inspect.subject(context.message), "markers": list(params["markers"])},
        )
    ]


@rule("EU-INFO-13-14", Stage.DATA)
def information_notice(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail links to the controller's privacy notice."""
    if not context.commercial:
        return []
    parts = inspect.text_parts(context.message)
    if any(inspect.mentions_privacy(part) for part in parts):
        return []
    links = [link.href for part in parts for link in part.links]
    return [Finding("no privacy-notice link in the body", {"links": links[:20]})]
