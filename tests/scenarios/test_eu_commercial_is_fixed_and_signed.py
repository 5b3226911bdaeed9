"""An EU recipient with consent; the commercial message has no List-Unsubscribe and no identity
footer. Relay holds a DKIM key for the From domain, so instead of refusing it adds its own
one-click List-Unsubscribe (RFC 8058) and mailto, and the footer, signs the result, and records
each change (old -> new) under the rule that ordered it. The delivered bytes verify."""

from __future__ import annotations

from tests.policy.builders import LEGAL_NAME, POSTAL_ADDRESS
from tests.scenarios.compliance import (
    EU_RECIPIENT,
    add_consent,
    add_shop_sender,
    records_for,
    submit,
)
from tests.scenarios.rewriting import (
    assert_verifies,
    body_text,
    one_click_token,
    parse,
    rewriting_config,
    without_unsubscribe,
)


def test_eu_message_without_unsubscribe_and_footer_is_fixed(make_relay, shop, sink, tmp_path):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, EU_RECIPIENT, "EU", record_id="c-eu")

    _, data = submit(relay, [EU_RECIPIENT], without_unsubscribe())
    assert data is not None
    assert data[0] == 250, data

    (delivered,) = sink.wait_for(1)
    assert delivered.rcpt_tos == [EU_RECIPIENT]
    parsed = parse(delivered.data)
    token = one_click_token(parsed)
    text = body_text(parsed)
    assert LEGAL_NAME in text
    assert POSTAL_ADDRESS in text
    assert f"/u/{token}" in text
    assert_verifies(delivered.data, shop.rsa, tmp_path / "verify")

    records = records_for(relay, EU_RECIPIENT)
    changes = [r for r in records if r["action"] == "fix" and "field" in r["inputs"]]
    fields = {r["inputs"]["field"]: r for r in changes}
    unsubscribe = fields["List-Unsubscribe"]
    assert unsubscribe["inputs"]["old"] is None
    assert token in unsubscribe["inputs"]["new"]
    assert unsubscribe["rule_id"] == "EU-WITHDRAW-EASY"
    assert "-> " in unsubscribe["detail"]
    assert fields["List-Unsubscribe-Post"]["inputs"]["new"] == "List-Unsubscribe=One-Click"
    footers = [r for r in changes if r["inputs"]["field"].startswith("body ")]
    assert footers
    assert all(r["rule_id"] == "EU-WITHDRAW-EASY" for r in footers)
    assert all(LEGAL_NAME in r["inputs"]["new"] for r in footers)
    (accepted,) = [r for r in records if r["action"] == "accept"]
    assert accepted["inputs"]["dkim"] == ["d=shop.example s=s2026 a=rsa-sha256"]
    assert "unsubscribe" in accepted["inputs"]["fixes"]
    assert {r["queue_id"] for r in changes} == {accepted["queue_id"]}
