"""A PRC recipient with consent; the advertisement's Subject does not start with 广告 or AD.
Relay holds a DKIM key for the From domain, so it prefixes the Subject with the policy's
【广告】 (RFC 2047 encoded), signs, and delivers; the delivered bytes verify."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    PRC_RECIPIENT,
    add_consent,
    add_shop_sender,
    records_for,
    submit,
)
from tests.scenarios.rewriting import assert_verifies, parse, rewriting_config


def test_prc_advert_is_delivered_with_the_ad_prefix(make_relay, shop, sink, tmp_path):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, PRC_RECIPIENT, "CN", record_id="c-cn")

    _, data = submit(relay, [PRC_RECIPIENT], message({"Subject": "Summer sale: 20% off"}))
    assert data is not None
    assert data[0] == 250, data

    (delivered,) = sink.wait_for(1)
    assert str(parse(delivered.data)["Subject"]) == "【广告】Summer sale: 20% off"
    assert b"=?UTF-8?B?" in delivered.data.split(b"\r\n\r\n", 1)[0]
    assert_verifies(delivered.data, shop.rsa, tmp_path / "verify")
    (change,) = [
        r
        for r in records_for(relay, PRC_RECIPIENT)
        if r["action"] == "fix" and r["inputs"].get("field") == "Subject"
    ]
    assert change["rule_id"] == "PRC-SUBJECT-AD-PREFIX"
    assert change["inputs"]["old"] == "Summer sale: 20% off"
    assert change["inputs"]["new"] == "【广告】Summer sale: 20% off"
