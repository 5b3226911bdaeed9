"""The same EU message as the one relay fixes, but relay holds no DKIM key for the From domain:
a rewrite would break the mailer's signature and relay cannot sign it again (COMPLIANCE §11
point 10). With the shipped policies MBP-DKIM-ALIGNED refuses such mail anyway; an operator
who relaxed that rule to a warning still gets the message refused, with the fix rule's reply,
and nothing is delivered."""

from __future__ import annotations

import pytest

from tests.scenarios.compliance import (
    EU_RECIPIENT,
    add_consent,
    add_shop_sender,
    policies_with,
    records_for,
    reply_status,
    submit,
)
from tests.scenarios.rewriting import rewriting_config, without_unsubscribe


@pytest.mark.usefixtures("shop")  # shop.example's SPF and DMARC, published in the test DNS
def test_message_needing_a_fix_without_an_aligned_key_is_refused(make_relay, sink, tmp_path):
    relaxed = policies_with(tmp_path / "policies", {"MBP-DKIM-ALIGNED": "warn"})
    relay = make_relay(rewriting_config(sink, None, policy_files=relaxed))
    add_shop_sender(relay)
    add_consent(relay, EU_RECIPIENT, "EU", record_id="c-eu")

    _, data = submit(relay, [EU_RECIPIENT], without_unsubscribe())
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    records = records_for(relay, EU_RECIPIENT)
    (refusing,) = [r for r in records if r.get("reply")]
    assert refusing["action"] == "fix"
    assert refusing["reply"] == f"{code} {text}"
    (warning,) = [r for r in records if r["rule_id"] == "MBP-DKIM-ALIGNED"]
    assert warning["action"] == "warn"
    assert not any("field" in r["inputs"] for r in records)
    assert not any(r["action"] == "accept" for r in records)
    assert relay.queue_files() == []
    assert not sink.messages
