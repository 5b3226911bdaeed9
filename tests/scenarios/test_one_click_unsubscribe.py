"""An EU recipient gets a commercial message that relay fixed with its own one-click
List-Unsubscribe. The recipient's mailbox provider POSTs `List-Unsubscribe=One-Click` to that URI
(RFC 8058) on relay's HTTP listener (in production behind the TLS proxy of the https base URL):
200, and the unsubscribe is in the audit log. The shop's next message to that recipient is refused
at RCPT with 550 5.7.1 under the suppression rules, with no grace period."""

from __future__ import annotations

import httpx

from tests.scenarios.compliance import (
    EU_RECIPIENT,
    add_consent,
    add_shop_sender,
    audit_records,
    records_for,
    reply_status,
    submit,
)
from tests.scenarios.rewriting import (
    UNSUBSCRIBE_BASE,
    one_click_token,
    parse,
    rewriting_config,
    without_unsubscribe,
)


def test_one_click_post_stops_the_next_message_at_rcpt(make_relay, shop, sink):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, EU_RECIPIENT, "EU", record_id="c-eu")

    _, data = submit(relay, [EU_RECIPIENT], without_unsubscribe())
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    uri = f"{UNSUBSCRIBE_BASE}/u/{one_click_token(parse(delivered.data))}"

    response = httpx.post(
        uri.replace(UNSUBSCRIBE_BASE, relay.http_url),
        data={"List-Unsubscribe": "One-Click"},
    )
    assert response.status_code == 200, response.text
    assert "set-cookie" not in response.headers
    assert "location" not in response.headers

    (accepted,) = [r for r in records_for(relay, EU_RECIPIENT) if r["action"] == "accept"]
    (unsubscribe,) = [r for r in audit_records(relay) if r["stage"] == "unsubscribe"]
    assert unsubscribe["recipient_hash"] == accepted["recipient_hash"]
    assert (unsubscribe["action"], unsubscribe["sender_id"]) == ("suppress", "shop")
    assert unsubscribe["inputs"]["scope"] == "sender"

    replies, data = submit(relay, [EU_RECIPIENT], without_unsubscribe())
    code, text = replies[EU_RECIPIENT]
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    assert data is None
    refusals = [r for r in records_for(relay, EU_RECIPIENT) if r["action"] == "reject"]
    assert sorted(r["rule_id"] for r in refusals) == ["EU-OBJECTION-STOP", "MBP-UNSUB-48H"]
    assert all(r["inputs"]["suppression_source"] == "one-click" for r in refusals)
    assert all(r["inputs"]["suppression_reason"] == "unsubscribe_one_click" for r in refusals)
    assert len(sink.messages) == 1
