"""Two EU recipients in one transaction, the message needing fixes: the unsubscribe token names
the recipient, so each gets its own copy (own queue id, own token, own signature), both
answered by the one 250."""

from __future__ import annotations

from tests.scenarios.compliance import add_consent, add_shop_sender, records_for, submit
from tests.scenarios.rewriting import (
    assert_verifies,
    one_click_token,
    parse,
    rewriting_config,
    without_unsubscribe,
)

FIRST = "eva@example.de"
SECOND = "jan@example.de"


def test_each_recipient_gets_its_own_fixed_signed_copy(make_relay, shop, sink, tmp_path):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, FIRST, "EU", record_id="c-eva")
    add_consent(relay, SECOND, "EU", record_id="c-jan")

    replies, data = submit(relay, [FIRST, SECOND], without_unsubscribe())
    assert all(code == 250 for code, _ in replies.values()), replies
    assert data is not None
    assert data[0] == 250, data

    delivered = sink.wait_for(2)
    by_recipient = {tuple(m.rcpt_tos): m for m in delivered}
    assert set(by_recipient) == {(FIRST,), (SECOND,)}
    tokens = {}
    for n, (recipients, copy) in enumerate(sorted(by_recipient.items())):
        tokens[recipients[0]] = one_click_token(parse(copy.data))
        assert_verifies(copy.data, shop.rsa, tmp_path / f"verify-{n}")
    assert tokens[FIRST] != tokens[SECOND]
    queue_ids = set()
    for address in (FIRST, SECOND):
        (accepted,) = [r for r in records_for(relay, address) if r["action"] == "accept"]
        queue_ids.add(accepted["queue_id"])
        (change,) = [
            r for r in records_for(relay, address) if r["inputs"].get("field") == "List-Unsubscribe"
        ]
        assert tokens[address] in change["inputs"]["new"]
        assert change["queue_id"] == accepted["queue_id"]
    assert len(queue_ids) == 2
