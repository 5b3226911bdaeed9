"""A recipient who unsubscribed is refused at the next RCPT, with no grace period, under every
rule id that applies to it (MBP-UNSUB-48H for everyone, plus its jurisdiction's own)."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    import_rows,
    policy_config,
    records_for,
    reply_status,
    submit,
)


def test_suppressed_recipient_is_refused_at_rcpt(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    other = "bob@example.us"
    import_rows(
        relay,
        "suppressions",
        [{"address": US_RECIPIENT.upper(), "sender_id": "shop", "reason": "unsubscribe_one_click"}],
    )
    replies, data = submit(relay, [US_RECIPIENT, other], message())
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    assert replies[other][0] == 250
    assert data is not None
    assert data[0] == 250
    (delivered,) = sink.wait_for(1)
    assert delivered.rcpt_tos == [other]
    refusals = [r for r in records_for(relay, US_RECIPIENT) if r["action"] == "reject"]
    assert sorted(r["rule_id"] for r in refusals) == ["MBP-UNSUB-48H", "US-OPTOUT-HONOR-10BD"]
    assert all(r["inputs"]["suppression_reason"] == "unsubscribe_one_click" for r in refusals)
    assert not any(r["action"] == "accept" for r in records_for(relay, US_RECIPIENT))


def test_list_scoped_suppression_applies_to_that_list_only(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    import_rows(
        relay,
        "suppressions",
        [
            {
                "address": US_RECIPIENT,
                "sender_id": "shop",
                "scope": "sender+list",
                "list_id": "weekly",
                "reason": "unsubscribe_one_click",
            }
        ],
    )
    _, data = submit(relay, [US_RECIPIENT], message({"X-Relay-Campaign": "weekly"}))
    assert data is not None
    assert (data[0], reply_status(data[1])) == (550, "5.7.1"), data
    _, data = submit(relay, [US_RECIPIENT], message({"X-Relay-Campaign": "offers"}))
    assert data is not None
    assert data[0] == 250, data
    assert len(sink.wait_for(1)) == 1
