"""People's Republic of China: Internet E-mail Measures, Advertising Law, PIPL (COMPLIANCE §4).

The suppression rule PRC-OPTOUT-STOP lives in common.py.
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

AD_PREFIXES = ("广告", "AD")  # 办法 Art. 13(3): “广告”或者“AD”字样, at the front of the Subject
_OPENING_BRACKETS = "[【(（「"
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrefixParams(_Params):
    # The prefix the rewrite stage prepends to fix a Subject (quoted in the finding).
    prefix: str = "【广告】"


class PersonalisedParams(_Params):
    # Campaigns (list ids, X-Relay-Campaign) whose content is chosen by automated decisions.
    personalised_campaigns: list[str] = []


@rule("PRC-CONSENT-EXPLICIT", Stage.RCPT)
def consent_explicit(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Advertising mail to a PRC recipient needs explicit consent or the recipient's request
    (express/confirmed opt-in or request, tagged CN); soft opt-in and implied consent are not
    enough."""
    if not context.commercial:
        return []
    explicit = [
        record
        for record in context.valid_consents()
        if record.basis.affirmative and "CN" in record.jurisdictions
    ]
    if explicit:
        return []
    return [
        Finding(
            "no explicit consent (明确同意) of this recipient for this list",
            {
                "list_id": context.list_id,
                "consents": [
                    {
                        "record_id": record.record_id,
                        "basis": record.basis.value,
                        "jurisdictions": sorted(record.jurisdictions),
                        "covers": record.covers(context.list_id, context.now),
                    }
                    for record in context.consents
                ],
            },
        )
    ]


@rule("PRC-ENVELOPE-NO-FORGE", Stage.RCPT)
def envelope_no_forge(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The envelope sender (MAIL FROM) is in a verified domain of the sender or below one
    (a VERP bounce domain); listed @MAIL, checked at RCPT where the context exists."""
    if context.sender is None:
        return [inspect.no_sender(context)]
    verified = context.sender.verified_domains
    domain = inspect.domain_of(context.mail_from) if "@" in context.mail_from else ""
    if domain and inspect.within(domain, verified, subdomains=True):
        return []
    return [
        Finding(
            "the envelope sender is not in a verified domain of the sender",
            {"mail_from": context.mail_from, "verified_domains": list(verified)},
        )
    ]


@rule("PRC-SUBJECT-AD-PREFIX", Stage.DATA, params=PrefixParams)
def subject_ad_prefix(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The decoded Subject of advertising mail begins with 广告 or AD (case-sensitive), after
    leading whitespace and at most one opening bracket."""
    if not context.commercial:
        return []
    subject = inspect.subject(context.message)
    head = subject.lstrip()
    if head[:1] and head[0] in _OPENING_BRACKETS:
        head = head[1:]
    joined = head[2:3].isascii() and head[2:3].isalpha()  # "ADVENTURE" is not the marker
    if head.startswith(AD_PREFIXES) and not (head.startswith("AD") and joined):
        return []
    inputs: dict[str, object] = {"subject": subject, "fix_prefix": params["prefix"]}
    detail = f"the Subject does not begin with 广告 or AD (fix: prepend {params['prefix']})"
    if head[:2].upper() == "AD" and not joined:
        inputs["case_mismatch"] = head[:2]
        detail = f"the Subject begins with {head[:2]!r}, not 'AD' (the marker is case-sensitive)"
    return [Finding(detail, inputs)]


@rule("PRC-OPTOUT-CONTACT", Stage.DATA)
def optout_contact(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Advertising mail gives a refusal e-mail address (a mailto List-Unsubscribe, or an
    address the body offers for opting out) and a one-click https unsubscribe."""
    if not context.commercial:
        return []
    uris = inspect.list_unsubscribe(context.message)
    parts = inspect.text_parts(context.message)
    mailto = [uri for uri in uris if uri.lower().startswith("mailto:")]
    for part in parts:  # a refusal address the body gives with its opt-out wording
        mailto += [
            link.href
            for link in part.links
            if link.href.lower().startswith("mailto:")
            and (inspect.says_unsubscribe(link.href) or inspect.says_unsubscribe(link.text))
        ]
        for index in part.unsubscribe_lines:
            mailto += [f"mailto:{address}" for address in _ADDRESS.findall(part.lines[index])]
    problems = []
    if not mailto:
        problems.append("no mailto refusal address in List-Unsubscribe or the body")
    if not inspect.one_click(context.message):
        problems.append("no one-click https List-Unsubscribe")
    inputs = {
        "list_unsubscribe": uris,
        "refusal_addresses": sorted(set(mailto)),
        "list_unsubscribe_post": inspect.header(context.message, "List-Unsubscribe-Post"),
    }
    return inspect.problems_finding(problems, inputs)


@rule("PRC-ADLAW-IDENTITY", Stage.DATA)
def adlaw_identity(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The body states the sender's true identity (legal name) and contact."""
    if not context.commercial:
        return []
    if context.sender is None:
        return [inspect.no_sender(context)]
    body = " ".join(part.normalised for part in inspect.text_parts(context.message))
    wanted = {"legal_name": context.sender.legal_name, "contact": context.sender.contact}
    missing = [
        key for key, value in wanted.items() if not value or inspect.normalise(value) not in body
    ]
    if not missing:
        return []
    return [Finding(f"the body lacks the sender's {' and '.join(missing)}", wanted)]


@rule("PRC-PIPL-AUTOMATED-MKT", Stage.DATA, params=PersonalisedParams)
def automated_marketing(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Personalised (automated-decision) marketing offers an easy refusal: a one-click
    List-Unsubscribe."""
    if context.list_id is None or context.list_id not in params["personalised_campaigns"]:
        return []
    if inspect.one_click(context.message):
        return []
    return [
        Finding(
            f"campaign {context.list_id} is personalised but offers no one-click refusal",
            {"list_id": context.list_id, **inspect.unsubscribe_headers(context.message)},
        )
    ]
