"""A commercial message without List-Unsubscribe is refused at end of DATA: CAN-SPAM's opt-out
mechanism and the mailbox providers' one-click unsubscribe are missing (a fix the rewrite stage
will make; until then the rule's reply refuses it)."""

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


def test_commercial_message_without_list_unsubscribe_is_refused(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    bare = message({"List-Unsubscribe": None, "List-Unsubscribe-Post": None})
    _, data = submit(relay, [US_RECIPIENT], bare)
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    tripped = {r["rule_id"] for r in records_for(relay, US_RECIPIENT) if r["action"] == "fix"}
    assert {"US-OPTOUT-PRESENT", "MBP-ONECLICK"} <= tripped
    assert not any(r["action"] == "accept" for r in records_for(relay, US_RECIPIENT))
    assert relay.queue_files() == []
    assert not sink.messages
