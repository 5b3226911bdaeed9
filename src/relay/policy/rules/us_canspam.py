"""United States: CAN-SPAM (15 U.S.C. 7701-7713) and 16 CFR Part 316 (COMPLIANCE §2).

The suppression rule US-OPTOUT-HONOR-10BD lives in common.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from relay.policy import inspect
from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage
from relay.policy.rules import rule

ADULT_LABEL = "SEXUALLY-EXPLICIT: "  # 16 CFR 316.4(a)(1): exactly these 19 characters
# A reply or forward prefix ("Re:", "Fwd:", "AW:", "回复:"), as mail clients write them.
_REPLY_PREFIX = re.compile(
    r"^\s*(re|fwd?|aw|wg|sv|vs|tr|rv|回复|回覆|转发|轉寄)\s*(\[\d+\])?\s*[:：]",
    re.IGNORECASE,
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarkerParams(_Params):
    # What identifies mail as an advertisement, found in the Subject or the body (case-folded).
    markers: list[str] = ["Ad:", "[Ad]", "Advertisement"]


class AdultParams(_Params):
    # Campaigns (list ids, X-Relay-Campaign) the sender declared as sexually oriented.
    adult_campaigns: list[str] = []


@rule("US-HDR-ACCURATE", Stage.DATA)
def header_accurate(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """From (and Reply-To) are in the sender's verified domains: the header identifies who
    sends. Applies to every class of mail, transactional too."""
    if context.sender is None:
        return [inspect.no_sender(context)]
    verified = context.sender.verified_domains
    senders = inspect.addresses(context.message, "From")
    replies = inspect.addresses(context.message, "Reply-To")
    inputs = {"from": senders, "reply_to": replies, "verified_domains": list(verified)}
    if not senders:
        return [Finding("the message has no From address", inputs)]
    foreign = inspect.foreign_addresses(senders + replies, verified)
    if foreign:
        return [Finding(f"not a verified domain of the sender: {', '.join(foreign)}", inputs)]
    return []


@rule("US-NO-UNAUTH-RELAY", Stage.RCPT)
def no_unauthorised_relay(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Mail is relayed only for authenticated or allow-listed clients."""
    if context.authenticated_as is not None or context.trusted_client:
        return []
    return [
        Finding(
            "relaying for an unauthenticated client outside the trusted networks",
            {"authenticated_as": None, "trusted_client": False, "mail_from": context.mail_from},
        )
    ]


@rule("US-SUBJ-DECEPTIVE", Stage.DATA)
def subject_deceptive(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """A commercial Subject that pretends to be a reply or forward ("Re:", "Fwd:") of a
    conversation the message does not belong to (no In-Reply-To, no References)."""
    if not context.commercial:
        return []
    subject = inspect.subject(context.message)
    if not _REPLY_PREFIX.match(subject):
        return []
    in_reply_to = inspect.header(context.message, "In-Reply-To")
    references = inspect.header(context.message, "References")
    if in_reply_to or references:
        return []
    return [
        Finding(
            "the Subject looks like a reply or forward but the message answers nothing",
            {"subject": subject, "in_reply_to": in_reply_to, "references": references},
        )
    ]


@rule("US-OPTOUT-PRESENT", Stage.DATA)
def optout_present(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail has an https or mailto List-Unsubscribe and an unsubscribe link or
    notice in every text part (plain and HTML)."""
    if not context.commercial:
        return []
    uris = inspect.list_unsubscribe(context.message)
    usable = [uri for uri in uris if uri.lower().startswith(("https://", "mailto:"))]
    parts = inspect.text_parts(context.message)
    lacking = [part.content_type for part in parts if not inspect.mentions_unsubscribe(part)]
    problems = []
    if not usable:
        problems.append("no https or mailto List-Unsubscribe")
    if not parts:
        problems.append("no text part to carry an unsubscribe notice")
    if lacking:
        problems.append(f"no unsubscribe link or notice in {', '.join(lacking)}")
    inputs = {"list_unsubscribe": uris, "parts": [part.content_type for part in parts]}
    return inspect.problems_finding(problems, inputs)


@rule("US-OPTOUT-NO-FEE", Stage.DATA)
def optout_no_fee(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Opting out takes no more than a reply e-mail or one web request: a mailto or one-click
    List-Unsubscribe. Anything else (a landing page, perhaps with a login) cannot be
    verified."""
    if not context.commercial:
        return []
    uris = inspect.list_unsubscribe(context.message)
    mailto = any(uri.lower().startswith("mailto:") for uri in uris)
    if mailto or inspect.one_click(context.message):
        return []
    return [
        Finding(
            "neither a mailto nor a one-click List-Unsubscribe: the opt-out page cannot be "
            "verified to be free and single-step",
            inspect.unsubscribe_headers(context.message),
        )
    ]


@rule("US-AD-IDENTIFY", Stage.DATA, params=MarkerParams)
def ad_identify(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail to a recipient without prior affirmative consent is identified as an
    advertisement by a configured marker in the Subject or the body."""
    if not context.commercial:
        return []
    affirmative = [r.record_id for r in context.valid_consents() if r.basis.affirmative]
    if affirmative:
        return []
    if inspect.has_marker(context.message, params["markers"]):
        return []
    return [
        Finding(
            "no affirmative consent and no advertisement marker in the Subject or body",
            {
                "subject": inspect.subject(context.message),
                "markers": list(params["markers"]),
                "consents": [(r.record_id, r.basis.value) for r in context.valid_consents()],
            },
        )
    ]


@rule("US-POSTAL-ADDRESS", Stage.DATA)
def postal_address(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The sender's registered postal address appears in the text of the message (plain text or
    visible HTML text; not only in an image), however it is wrapped or cased."""
    if not context.commercial:
        return []
    if context.sender is None:
        return [inspect.no_sender(context)]
    inputs: dict[str, object] = {"postal_address": context.sender.postal_address}
    if not inspect.normalise(context.sender.postal_address):
        return [Finding("the sender profile has no postal address", inputs)]
    parts = inspect.text_parts(context.message)
    if inspect.in_body_text(parts, context.sender.postal_address):
        return []
    inputs["parts"] = [part.content_type for part in parts]
    return [Finding("the sender's postal address is not in the message text", inputs)]


@rule("US-ADULT-LABEL", Stage.DATA, params=AdultParams)
def adult_label(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Mail of a campaign declared sexually oriented starts its Subject with exactly
    "SEXUALLY-EXPLICIT: "."""
    if context.list_id is None or context.list_id not in params["adult_campaigns"]:
        return []
    subject = inspect.subject(context.message)
    if subject.startswith(ADULT_LABEL):
        return []
    return [
        Finding(
            f"campaign {context.list_id} is declared adult but the Subject does not start "
            f"with {ADULT_LABEL!r}",
            {"subject": subject, "list_id": context.list_id},
        )
    ]
