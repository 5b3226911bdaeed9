"""One DATA reply covers every recipient, so a recipient whose content rules differ from the
first accepted one gets 452 4.5.3 and is sent in its own transaction (RFC 5321 §4.5.3.1.10)."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    EU_RECIPIENT,
    US_RECIPIENT,
    add_consent,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)


def test_recipient_of_another_jurisdiction_is_deferred_to_its_own_transaction(
    make_relay, shop, sink
):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, EU_RECIPIENT, "EU", record_id="c-eu")
    add_consent(relay, US_RECIPIENT, "US", record_id="c-us")
    replies, data = submit(relay, [US_RECIPIENT, EU_RECIPIENT], message())
    assert replies[US_RECIPIENT][0] == 250
    code, text = replies[EU_RECIPIENT]
    assert (code, reply_status(text)) == (452, "4.5.3"), text
    assert data is not None
    assert data[0] == 250
    (split,) = [r for r in records_for(relay, EU_RECIPIENT) if r["action"] == "defer"]
    assert split["reply"].startswith("452 4.5.3 ")
    assert split["inputs"]["jurisdictions"] == ["EU"]

    replies, data = submit(relay, [EU_RECIPIENT], message())
    assert replies[EU_RECIPIENT][0] == 250
    assert data is not None
    assert data[0] == 250
    delivered = sink.wait_for(2)
    assert sorted(tuple(m.rcpt_tos) for m in delivered) == sorted(
        [(EU_RECIPIENT,), (US_RECIPIENT,)]
    )
