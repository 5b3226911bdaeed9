"""A US recipient; the commercial message has no List-Unsubscribe. CAN-SPAM's routine
conveyance: relay makes fixes ordered by US rules only for senders who opted in (COMPLIANCE §11
point 11). With the sender's default the message is refused even though relay holds a key; with
`fix_us` in the sender's import row it is fixed, signed and delivered."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    records_for,
    reply_status,
    submit,
)
from tests.scenarios.rewriting import (
    assert_verifies,
    one_click_token,
    parse,
    rewriting_config,
)


def bare() -> bytes:
    return message({"List-Unsubscribe": None, "List-Unsubscribe-Post": None})


def test_us_fix_refused_by_default(make_relay, shop, sink, tmp_path):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], bare())
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    (refusing,) = [r for r in records_for(relay, US_RECIPIENT) if r.get("reply")]
    assert refusing["rule_id"] == "US-OPTOUT-PRESENT"
    assert relay.queue_files() == []
    assert not sink.messages


def test_us_fix_made_when_the_sender_opted_in(make_relay, shop, sink, tmp_path):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay, fix_us=True)
    _, data = submit(relay, [US_RECIPIENT], bare())
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    one_click_token(parse(delivered.data))
    assert_verifies(delivered.data, shop.rsa, tmp_path / "verify")
    records = records_for(relay, US_RECIPIENT)
    assert any(r["rule_id"] == "US-OPTOUT-PRESENT" and r["action"] == "fix" for r in records)
    assert any(r["inputs"].get("field") == "List-Unsubscribe" for r in records)
    assert not any(r.get("reply") for r in records)
