"""The mailer's declarations (X-Relay-Message-Class, X-Relay-Campaign, X-Relay-Consent-Ref) are
recorded in the audit log and stripped before delivery; a message declared transactional that
looks promotional is delivered with a warning (MBP-STREAM-SEPARATION)."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)


def test_declarations_are_recorded_and_never_delivered(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    declared = message(
        {
            "X-Relay-Message-Class": "commercial",
            "X-Relay-Campaign": "summer",
            "X-Relay-Consent-Ref": "form-7/2025-01-15",
        }
    )
    _, data = submit(relay, [US_RECIPIENT], declared)
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert b"X-Relay-" not in delivered.data
    assert b"Subject: Summer sale" in delivered.data
    (accepted,) = [r for r in records_for(relay, US_RECIPIENT) if r["action"] == "accept"]
    assert accepted["inputs"]["declared_class"] == "commercial"
    assert accepted["inputs"]["campaign"] == "summer"
    assert accepted["inputs"]["consent_ref"] == "form-7/2025-01-15"
    assert accepted["message_id"] == "<m1@shop.example>"


def test_transactional_that_looks_promotional_is_delivered_with_a_warning(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    promo = message(
        {"X-Relay-Message-Class": "transactional", "Subject": "Your order: buy now, 50% off"},
        text="Limited time: buy now and get 50% off everything for $9.99!\n",
        html=None,
    )
    _, data = submit(relay, [US_RECIPIENT], promo)
    assert data is not None
    assert data[0] == 250, data
    sink.wait_for(1)
    warnings = [r for r in records_for(relay, US_RECIPIENT) if r["action"] == "warn"]
    assert "MBP-STREAM-SEPARATION" in {r["rule_id"] for r in warnings}


def test_unknown_message_class_is_refused(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message({"X-Relay-Message-Class": "newsletter"}))
    assert data is not None
    assert (data[0], reply_status(data[1])) == (554, "5.6.0"), data
    assert "X-Relay-Message-Class must be one of" in data[1]
