"""Build messages and MessageContexts for rule tests from keyword overrides.

The defaults describe a message that every jurisdiction accepts: commercial mail from
news@shop.example, a sender profile that verifies shop.example with its legal name, postal
address and contact, one valid express opt-in consent for the recipient, one-click
List-Unsubscribe headers, and text/plain and HTML parts that carry the unsubscribe link, the
postal address, the legal name, the contact and a privacy-notice link. A test changes the one
thing it is about:

    context = make_context(headers={"Subject": "Re: sale"}, html=None)
    context = make_context(jurisdictions={"CN"}, consents=())
"""

from __future__ import annotations

import email
import email.policy
import tomllib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import tomli_w

from relay.policy.context import MessageContext
from relay.policy.engine import PolicyEngine
from relay.policy.files import DEFAULT_POLICY_DIR, Policy, load_policies
from relay.policy.model import Decision, Stage, Verdict
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    MessageClass,
    SenderProfile,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
RECIPIENT = "reader@example.net"
LEGAL_NAME = "Shop Example Ltd"
POSTAL_ADDRESS = "1 Market Street, Springfield, IL 62701"
CONTACT = "service@shop.example"
UNSUBSCRIBE_URL = "https://shop.example/unsubscribe/t0ken"
UNSUBSCRIBE_MAILTO = "mailto:unsubscribe@shop.example?subject=unsubscribe"
PRIVACY_URL = "https://shop.example/privacy"

SENDER = SenderProfile(
    sender_id="shop",
    legal_name=LEGAL_NAME,
    postal_address=POSTAL_ADDRESS,
    contact=CONTACT,
    verified_domains=("shop.example",),
    default_jurisdiction="US",
    users=("shop",),
)

HEADERS: dict[str, str] = {
    "From": "Shop Example <news@shop.example>",
    "To": RECIPIENT,
    "Subject": "Summer sale: 20% off",
    "Date": "Mon, 02 Jun 2025 12:00:00 +0000",
    "Message-ID": "<m1@shop.example>",
    "List-Unsubscribe": f"<{UNSUBSCRIBE_MAILTO}>, <{UNSUBSCRIBE_URL}>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}

TEXT = f"""Our summer sale starts today.

{LEGAL_NAME}, {POSTAL_ADDRESS}
Contact: {CONTACT}
Privacy notice: {PRIVACY_URL}
To stop receiving these e-mails, unsubscribe: {UNSUBSCRIBE_URL}
"""

HTML = f"""<html><head><title>Sale</title><style>p {{ color: red }}</style></head><body>
<p>Our summer sale starts today.</p>
<p>{LEGAL_NAME}<br>1 Market Street<br>Springfield, IL 62701</p>
<p>Contact: <a href="mailto:{CONTACT}">{CONTACT}</a>
| <a href="{PRIVACY_URL}">Privacy notice</a>
| <a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></p>
</body></html>
"""

_DEFAULT: Any = object()


def consent(**overrides: Any) -> ConsentRecord:
    """A valid express opt-in of the recipient for all of the sender's commercial mail."""
    fields: dict[str, Any] = {
        "record_id": "consent-1",
        "address_hash": "hash-of-reader",
        "sender_id": SENDER.sender_id,
        "scope": ("*",),
        "basis": ConsentBasis.EXPRESS_OPTIN,
        "jurisdictions": frozenset({"US"}),
        "obtained_at": NOW - timedelta(days=30),
        "source": "form:signup ip=192.0.2.7",
        "evidence_ref": "evidence/consent-1.json",
        "notice_version": "privacy-2025-01",
    }
    fields.update(overrides)
    return ConsentRecord(**fields)


def suppression(**overrides: Any) -> SuppressionEntry:
    fields: dict[str, Any] = {
        "address_hash": "hash-of-reader",
        "sender_id": SENDER.sender_id,
        "scope": SuppressionScope.SENDER,
        "reason": SuppressionReason.UNSUBSCRIBE_ONE_CLICK,
        "source": "one-click",
        "received_at": NOW - timedelta(hours=1),
    }
    fields.update(overrides)
    return SuppressionEntry(**fields)


def message(
    headers: Mapping[str, str | None] | None = None,
    *,
    text: str | None = TEXT,
    html: str | None = HTML,
) -> bytes:
    """A message from the default headers with `headers` applied (a None value removes the
    header), a text/plain part and, unless `html` is None, an HTML alternative. With neither
    part the body is an empty text/plain part."""
    merged: dict[str, str | None] = {**HEADERS, **(headers or {})}
    built = EmailMessage()
    for name, value in merged.items():
        if value is not None:
            built[name] = value
    if text is not None:
        built.set_content(text)
        if html is not None:
            built.add_alternative(html, subtype="html")
    elif html is not None:
        built.set_content(html, subtype="html")
    else:
        built.set_content("")
    return built.as_bytes(policy=email.policy.SMTP)


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def make_context(
    *,
    headers: Mapping[str, str | None] | None = None,
    text: str | None = TEXT,
    html: str | None = HTML,
    raw: bytes | None = None,
    jurisdictions: Iterable[str] = ("US",),
    consents: Iterable[ConsentRecord] | Any = _DEFAULT,
    **fields: Any,
) -> MessageContext:
    """A DATA-stage context (message and raw are set; RCPT rules ignore them). `consents`
    defaults to one valid record tagged with the context's jurisdictions; any other
    MessageContext field can be overridden by keyword."""
    jurisdictions = frozenset(jurisdictions)
    if consents is _DEFAULT:
        consents = (consent(jurisdictions=jurisdictions),)
    if raw is None:
        raw = message(headers, text=text, html=html)
    values: dict[str, Any] = {
        "now": NOW,
        "mail_from": "bounces+m1@shop.example",
        "recipient": RECIPIENT,
        "jurisdictions": jurisdictions,
        "message_class": MessageClass.COMMERCIAL,
        "authenticated_as": "shop",
        "trusted_client": False,
        "sender": SENDER,
        "list_id": "newsletter",
        "suppression": None,
        "consents": tuple(consents),
        "message": parse(raw),
        "raw": raw,
    }
    values.update(fields)
    return MessageContext(**values)


def policy_path(name: str) -> Path:
    """A policy file shipped with relay, e.g. policy_path("cn-prc.toml")."""
    return DEFAULT_POLICY_DIR / name


def load_policy(name: str) -> Policy:
    (policy,) = load_policies([policy_path(name)])
    return policy


def policy_entry(name: str, rule_id: str) -> dict[str, Any]:
    """The `[rules.ID]` table of a shipped policy file, as written."""
    entry: dict[str, Any] = tomllib.loads(policy_path(name).read_text("utf-8"))["rules"][rule_id]
    return entry


def policy_with_params(
    directory: Path, name: str, rule_id: str, params: Mapping[str, Any]
) -> Policy:
    """A shipped policy file with some params of one rule changed (e.g. a deployment's list of
    adult campaigns), written to `directory` and loaded (so validated) like the original."""
    data = tomllib.loads(policy_path(name).read_text("utf-8"))
    data["rules"][rule_id].setdefault("params", {}).update(params)
    path = directory / name
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    (policy,) = load_policies([path])
    return policy


def evaluate(policy: Policy, stage: Stage, context: MessageContext) -> Decision:
    return PolicyEngine([policy]).evaluate(stage, context)


def verdicts_for(decision: Decision, rule_id: str) -> list[Verdict]:
    return [verdict for verdict in decision.verdicts if verdict.rule_id == rule_id]
