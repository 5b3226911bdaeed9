"""Consent decided at RCPT by the recipient's jurisdiction: the EU (ePrivacy Art. 13(1)) and the
PRC (办法 Art. 13(2)) need a consent record; the US has no consent duty, but without affirmative
consent the message must identify itself as an advertisement (US-AD-IDENTIFY, a warning)."""

from __future__ import annotations

import pytest

from tests.policy.builders import message
from tests.scenarios.compliance import (
    EU_RECIPIENT,
    PRC_RECIPIENT,
    US_RECIPIENT,
    add_consent,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)

ADVERT = message({"Subject": "【广告】Summer sale: 20% off"})


@pytest.mark.parametrize(
    ("recipient", "rule_id"),
    [(EU_RECIPIENT, "EU-EPR-CONSENT"), (PRC_RECIPIENT, "PRC-CONSENT-EXPLICIT")],
)
def test_recipient_without_consent_is_refused_at_rcpt(make_relay, shop, sink, recipient, rule_id):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    replies, data = submit(relay, [recipient], ADVERT)
    code, text = replies[recipient]
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    assert data is None
    refusals = [r for r in records_for(relay, recipient) if r["action"] == "reject"]
    assert [r["rule_id"] for r in refusals] == [rule_id]
    assert refusals[0]["citation"]
    assert refusals[0]["stage"] == "rcpt"
    assert refusals[0]["reply"].startswith("550 5.7.1 ")
    assert not sink.messages


@pytest.mark.parametrize(
    ("recipient", "jurisdiction"), [(EU_RECIPIENT, "EU"), (PRC_RECIPIENT, "CN")]
)
def test_recipient_with_consent_is_delivered(make_relay, shop, sink, recipient, jurisdiction):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, recipient, jurisdiction, record_id=f"c-{jurisdiction}")
    replies, data = submit(relay, [recipient], ADVERT)
    assert replies[recipient][0] == 250, replies
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert delivered.rcpt_tos == [recipient]
    (accepted,) = [r for r in records_for(relay, recipient) if r["action"] == "accept"]
    assert accepted["stage"] == "data"
    assert accepted["queue_id"] == data[1].split()[-1]
    assert accepted["inputs"]["consent_records"] == [f"c-{jurisdiction}"]
    assert jurisdiction in accepted["inputs"]["jurisdictions"]


def test_us_recipient_needs_no_consent_but_is_warned_about_the_ad_label(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    plain = message({"Subject": "Summer sale: 20% off"})
    replies, data = submit(relay, [US_RECIPIENT], plain)
    assert replies[US_RECIPIENT][0] == 250
    assert data is not None
    assert data[0] == 250, data
    sink.wait_for(1)
    warnings = [r["rule_id"] for r in records_for(relay, US_RECIPIENT) if r["action"] == "warn"]
    assert "US-AD-IDENTIFY" in warnings


def test_us_recipient_with_affirmative_consent_gets_no_ad_label_warning(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, US_RECIPIENT, "US", record_id="c-US")
    plain = message({"Subject": "Summer sale: 20% off"})
    _, data = submit(relay, [US_RECIPIENT], plain)
    assert data is not None
    assert data[0] == 250, data
    rule_ids = [r["rule_id"] for r in records_for(relay, US_RECIPIENT)]
    assert "US-AD-IDENTIFY" not in rule_ids
