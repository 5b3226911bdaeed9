"""A body line over 998 octets (RFC 5322 §2.1.1): with an aligned DKIM key relay re-encodes the
part quoted-printable (RFC-5322-LINELEN), signs and delivers it with every line short and the
text unchanged; without a key (and MBP-DKIM-ALIGNED relaxed, which would refuse it first) the
message is refused with the rule's 554 5.6.0."""

from __future__ import annotations

import pytest

from tests.policy.builders import HEADERS, TEXT
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    policies_with,
    records_for,
    submit,
)
from tests.scenarios.rewriting import assert_verifies, parse, rewriting_config

LONG_LINE = "Every product in the catalogue is on sale: " + "shoes and hats, " * 80


def long_line_message() -> bytes:
    """The builder's compliant message with a 7bit text part holding one 1,300-octet line."""
    headers = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    body = (TEXT + LONG_LINE + "\n").replace("\n", "\r\n")
    raw = (
        f"{headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
        f"Content-Transfer-Encoding: 7bit\r\n\r\n{body}"
    ).encode()
    assert max(len(line) for line in raw.split(b"\r\n")) > 998
    return raw


def test_long_body_line_is_reencoded_signed_and_delivered(make_relay, shop, sink, tmp_path):
    relay = make_relay(rewriting_config(sink, shop))
    add_shop_sender(relay, fix_us=True)
    _, data = submit(relay, [US_RECIPIENT], long_line_message())
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert max(len(line) for line in delivered.data.split(b"\r\n")) <= 998
    assert LONG_LINE.strip() in parse(delivered.data).get_body(("plain",)).get_content()
    assert_verifies(delivered.data, shop.rsa, tmp_path / "verify")
    fixes = [r for r in records_for(relay, US_RECIPIENT) if r["action"] == "fix"]
    assert "RFC-5322-LINELEN" in {r["rule_id"] for r in fixes}


@pytest.mark.usefixtures("shop")  # shop.example's SPF and DMARC, published in the test DNS
def test_long_body_line_without_a_key_is_refused_with_the_rules_reply(make_relay, sink, tmp_path):
    # MBP-DKIM-ALIGNED relaxed to a warning, so that the line-length rule decides
    relaxed = policies_with(tmp_path / "policies", {"MBP-DKIM-ALIGNED": "warn"})
    relay = make_relay(rewriting_config(sink, None, policy_files=relaxed))
    add_shop_sender(relay, fix_us=True)
    _, data = submit(relay, [US_RECIPIENT], long_line_message())
    assert data is not None
    assert data[0] == 554, data
    assert data[1].startswith("5.6.0 Line longer than 998 octets"), data
    assert not sink.messages
