"""VERP return paths: the queue entry and the recipient, readable back from a bounce."""

from __future__ import annotations

import re

import pytest

from relay.policy.engine import PolicyEngine
from relay.policy.model import Stage
from relay.rewrite import Change
from relay.rewrite.verp import (
    MAX_LOCAL_PART,
    VerpAddress,
    parse_verp,
    verp_address,
    verp_return_path,
    verp_tag,
)
from tests.policy.builders import make_context
from tests.rewrite.messages import POLICIES

QUEUE_ID = "0623A1B2C3D4E5F6A7B8C9"
DOMAIN = "bounces.shop.example"
DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("reader@example.net", "bounce+0623A1B2C3D4E5F6A7B8C9=reader=example.net"),
        ("a+tag@ex.org", "bounce+0623A1B2C3D4E5F6A7B8C9=a+tag=ex.org"),
        ("a=b@ex.org", "bounce+0623A1B2C3D4E5F6A7B8C9=a%3Db=ex.org"),
        ("100%@ex.org", "bounce+0623A1B2C3D4E5F6A7B8C9=100%25=ex.org"),
        ('"j..d"@ex.org', "bounce+0623A1B2C3D4E5F6A7B8C9=j.%2Ed=ex.org"),
        ('"a b\\"c"@ex.org', "bounce+0623A1B2C3D4E5F6A7B8C9=a%20b%22c=ex.org"),
        ("用户@例子.中国", None),
        ("Mixed.Case@Example.NET.", "bounce+0623A1B2C3D4E5F6A7B8C9=Mixed.Case=example.net"),
    ],
)
def test_verp_round_trip(recipient: str, expected: str | None) -> None:
    address = verp_address(DOMAIN, QUEUE_ID, recipient)
    local, _, domain = address.rpartition("@")
    assert domain == DOMAIN
    assert len(local.encode()) <= MAX_LOCAL_PART
    assert local.isascii()
    assert DOT_ATOM.match(local)
    if expected is not None:
        assert local == expected
    parsed = parse_verp(address)
    assert parsed is not None
    assert parsed.queue_id == QUEUE_ID
    if parsed.recipient is None:  # the short form
        assert parsed.tag == verp_tag(QUEUE_ID, recipient)
    else:
        original_local, _, original_domain = recipient.rpartition("@")
        assert parsed.recipient == f"{original_local}@{original_domain.rstrip('.').lower()}"
    assert parse_verp(address.upper()) is not None  # some MTAs change case


def test_utf8_recipient_round_trips_when_short() -> None:
    address = verp_address(DOMAIN, "Q1", "ü@ex.de")
    assert address == "bounce+Q1=%C3%BC=ex.de@bounces.shop.example"
    assert parse_verp(address) == VerpAddress("Q1", "ü@ex.de", None)


def test_long_recipients_get_the_short_form() -> None:
    recipient = "a.very.long.local.part.of.someone@subdomain.example-company.co.uk"
    address = verp_address(DOMAIN, QUEUE_ID, recipient)
    local = address.rpartition("@")[0]
    assert len(local) <= MAX_LOCAL_PART
    parsed = parse_verp(address)
    assert parsed == VerpAddress(QUEUE_ID, None, verp_tag(QUEUE_ID, recipient))
    assert verp_tag(QUEUE_ID, recipient.upper()) == parsed.tag  # matched case-insensitively
    assert verp_tag(QUEUE_ID, "other@example.net") != parsed.tag
    with pytest.raises(ValueError, match="too long"):
        verp_address(DOMAIN, "Q" * 60, recipient)


@pytest.mark.parametrize(
    "address",
    [
        "reader@example.net",
        "bounce@bounces.shop.example",
        "bounce+@bounces.shop.example",
        "bounce+Q1=a@bounces.shop.example",
        "bounce+Q1=a=b=c@bounces.shop.example",
        "bounce+Q-1=a=b@bounces.shop.example",
        "bounce+Q1=a%ZZ=b@bounces.shop.example",
        "bounce+Q1=%FF=b@bounces.shop.example",
        "other+Q1=a=b@bounces.shop.example",
    ],
)
def test_non_verp_addresses_are_none(address: str) -> None:
    assert parse_verp(address) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="queue id"):
        verp_address(DOMAIN, "Q-1", "a@b.c")
    with pytest.raises(ValueError, match="address"):
        verp_address(DOMAIN, "Q1", "no-at-sign")


def test_return_path_change_and_the_envelope_rule() -> None:
    new, change = verp_return_path("news@shop.example", DOMAIN, QUEUE_ID, "reader@example.net")
    assert change == Change("RELAY-VERP", "MAIL FROM", "news@shop.example", new)
    context = make_context(mail_from=new, jurisdictions=("CN",))
    decision = PolicyEngine(POLICIES).evaluate(Stage.RCPT, context)
    assert not [v for v in decision.verdicts if v.rule_id == "PRC-ENVELOPE-NO-FORGE"]
