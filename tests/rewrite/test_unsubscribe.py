"""Relay-hosted unsubscribe: the tokens, the URIs, and the List-Unsubscribe(-Post) fix."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import quote, unquote, urlsplit

import pytest

from relay.audit.records import AuditEvent
from relay.policy.inspect import ONE_CLICK
from relay.rewrite import Change, raw
from relay.rewrite.unsubscribe import (
    MAC_SIZE,
    UnsubscribeTokens,
    find_token,
    fix_unsubscribe,
    unsubscribe_links,
)
from relay.stores.hashing import AddressHasher
from tests.rewrite.messages import (
    KEY,
    LINKS,
    MESSAGES,
    TOKEN,
    TOKENS,
    assert_only_changed,
    assert_well_formed,
    fix_verdicts,
    verdicts,
    with_head,
)

ISSUED = date(2025, 6, 2)
HASH = AddressHasher(b"h" * 32).hash("Reader@Example.net")
RULES = ("RFC-LU-SYNTAX", "RFC-LUP-EXACT", "MBP-ONECLICK", "EU-WITHDRAW-EASY", "PRC-OPTOUT-CONTACT")

# -- tokens --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sender_id", "list_id"),
    [("shop", "newsletter"), ("shop", None), ("商店", "列表-1"), ("s" * 255, "l" * 255)],
)
def test_token_round_trip(sender_id: str, list_id: str | None) -> None:
    token = TOKENS.issue(sender_id=sender_id, list_id=list_id, address_hash=HASH, issued=ISSUED)
    claims = TOKENS.read(token)
    assert claims is not None
    assert (claims.sender_id, claims.list_id, claims.address_hash, claims.issued) == (
        sender_id,
        list_id,
        HASH,
        ISSUED,
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert quote(token, safe="") == token  # URL-safe as it is
    assert len(token.split(".")[1]) * 6 >= MAC_SIZE * 8 >= 128


def test_token_is_short_for_an_ordinary_sender() -> None:
    token = TOKENS.issue(sender_id="shop", list_id="newsletter", address_hash=HASH, issued=ISSUED)
    assert len(token) <= 100
    assert HASH not in token
    assert "reader" not in token.lower()


def test_every_altered_character_is_refused() -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, character in enumerate(TOKEN):
        if character == ".":
            continue
        for other in (alphabet[(alphabet.index(character) + 1) % 64], alphabet[0]):
            altered = TOKEN[:index] + other + TOKEN[index + 1 :]
            if altered != TOKEN:
                assert TOKENS.read(altered) is None, (index, other)


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        TOKEN + ".",
        TOKEN.replace(".", ""),
        TOKEN + "A",
        TOKEN[:-1],
        TOKEN + "=",
        TOKEN[:3] + "+" + TOKEN[4:],
        TOKEN[:3] + "/" + TOKEN[4:],
        "x" * 5000,
        TOKEN.split(".")[0] + "." + TOKEN.split(".")[0],
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert TOKENS.read(token) is None


def test_wrong_key_is_refused_and_old_keys_still_read() -> None:
    other = UnsubscribeTokens(b"z" * 32)
    assert other.read(TOKEN) is None
    rotated = UnsubscribeTokens(b"z" * 32, previous_keys=[KEY])
    assert rotated.read(TOKEN) == TOKENS.read(TOKEN)
    fresh = rotated.issue(sender_id="shop", list_id=None, address_hash=HASH, issued=ISSUED)
    assert TOKENS.read(fresh) is None


def test_tokens_do_not_expire_unless_asked() -> None:
    assert TOKENS.read(TOKEN) is not None
    late = ISSUED + timedelta(days=3650)
    assert TOKENS.read(TOKEN, today=late) is not None
    assert TOKENS.read(TOKEN, today=ISSUED + timedelta(days=60), max_age=timedelta(days=60))
    assert TOKENS.read(TOKEN, today=late, max_age=timedelta(days=60)) is None


def test_short_keys_and_bad_claims_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        UnsubscribeTokens(b"short")
    with pytest.raises(ValueError, match="255"):
        TOKENS.issue(sender_id="s" * 256, list_id=None, address_hash=HASH, issued=ISSUED)
    with pytest.raises(ValueError, match="sender id"):
        TOKENS.issue(sender_id="", list_id=None, address_hash=HASH, issued=ISSUED)
    assert "key" not in repr(TOKENS).replace("<key>", "")


def test_links_carry_the_token() -> None:
    https = urlsplit(LINKS.https)
    assert (https.scheme, https.netloc, https.path) == ("https", "u.relay.example", f"/u/{TOKEN}")
    mailto = urlsplit(LINKS.mailto)
    assert mailto.scheme == "mailto"
    assert mailto.path == "unsubscribe@relay.example"
    assert unquote(mailto.query) == f"subject=unsubscribe {TOKEN}"
    assert len(mailto.path.split("@")[0]) <= 64
    assert find_token(unquote(mailto.query)) == TOKEN
    assert find_token(f"Re: unsubscribe {TOKEN}") == TOKEN
    assert find_token("unsubscribe please") is None
    with pytest.raises(ValueError, match="host"):
        unsubscribe_links(TOKEN, "evil.example/path", "relay.example")


# -- the header fix ------------------------------------------------------------------------

GOOD_VALUE = f"<{LINKS.https}>, <{LINKS.mailto}>"
CASES = {
    "absent": {},
    "mailto only": {"List-Unsubscribe": "<mailto:unsubscribe@shop.example>"},
    "malformed (no brackets)": {"List-Unsubscribe": "https://shop.example/u/1"},
    "whitespace inside brackets": {"List-Unsubscribe": "<https://shop.example/u/ 1>"},
    "post not exact": {
        "List-Unsubscribe": "<https://shop.example/u/1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click&x=1",
    },
    "post without unsubscribe": {"List-Unsubscribe-Post": ONE_CLICK},
    "folded": {
        "List-Unsubscribe": "<mailto:u@shop.example>,\r\n\t<https://shop.example/u/1>",
        "List-Unsubscribe-Post": ONE_CLICK,
    },
}


def _with(message: bytes, headers: dict[str, str]) -> bytes:
    header, rest = raw.split(message)
    added = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode()
    return header + added + rest


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", ["plain", "alternative", "nested-mixed", "plain-8bit-utf8"])
def test_unsubscribe_headers_are_regenerated(case: str, name: str) -> None:
    before = _with(MESSAGES[name], CASES[case])
    after, changes = fix_unsubscribe(before, LINKS, rule_id="MBP-ONECLICK")
    assert_well_formed(after)
    assert_only_changed(before, after)
    items = raw.fields(raw.split(after)[0])
    unsubscribes = [item for item in items if item.key == "list-unsubscribe"]
    posts = [item for item in items if item.key == "list-unsubscribe-post"]
    assert [item.value for item in unsubscribes] == [GOOD_VALUE]
    assert [item.raw for item in posts] == [f"List-Unsubscribe-Post: {ONE_CLICK}\r\n".encode()]
    assert all(len(line) <= 998 for line in unsubscribes[0].raw.split(b"\r\n"))
    # The other fields are the same, in the same order.
    old = [i.raw for i in raw.fields(raw.split(before)[0]) if not i.key.startswith("list-unsub")]
    assert [i.raw for i in items if not i.key.startswith("list-unsub")] == old
    # old -> new, per field, with the rule id.
    old_value = CASES[case].get("List-Unsubscribe")
    unfolded = old_value.replace("\r\n", "") if old_value else None
    assert changes[0] == Change("MBP-ONECLICK", "List-Unsubscribe", unfolded, GOOD_VALUE)
    if CASES[case].get("List-Unsubscribe-Post") != ONE_CLICK:
        assert changes[1] == Change(
            "MBP-ONECLICK",
            "List-Unsubscribe-Post",
            CASES[case].get("List-Unsubscribe-Post"),
            ONE_CLICK,
        )
    else:
        assert len(changes) == 1
    assert fix_unsubscribe(after, LINKS, rule_id="MBP-ONECLICK") == (after, [])


def test_new_fields_stand_where_the_old_ones_stood() -> None:
    before = with_head(MESSAGES["plain"], List_Unsubscribe="<mailto:a@shop.example>")
    header, rest = raw.split(before)
    items = raw.fields(header)
    moved = [items[-1], *items[:-1]]  # List-Unsubscribe first
    before = raw.join(moved) + rest
    after, _ = fix_unsubscribe(before, LINKS, rule_id="RFC-LU-SYNTAX")
    keys = [item.key for item in raw.fields(raw.split(after)[0])]
    assert keys[:2] == ["list-unsubscribe", "list-unsubscribe-post"]


def test_every_instance_is_removed() -> None:
    before = _with(
        MESSAGES["plain"],
        {"List-Unsubscribe": "<https://a.example/1>", "List-Unsubscribe-Post": ONE_CLICK},
    )
    before = _with(before, {"list-unsubscribe": "<mailto:b@shop.example>,\r\n <https://b>"})
    before = _with(before, {"LIST-UNSUBSCRIBE-POST": ONE_CLICK})
    after, changes = fix_unsubscribe(before, LINKS, rule_id="RFC-LUP-EXACT")
    assert after.lower().count(b"list-unsubscribe:") == 1
    assert after.lower().count(b"list-unsubscribe-post:") == 1
    assert changes[0].old == "<https://a.example/1>\n<mailto:b@shop.example>, <https://b>"
    assert changes[1].old == f"{ONE_CLICK}\n{ONE_CLICK}"


@pytest.mark.parametrize("rule_id", RULES)
@pytest.mark.parametrize("case", list(CASES))
def test_the_rules_accept_the_new_headers(rule_id: str, case: str) -> None:
    before = _with(MESSAGES["plain"], CASES[case])
    after, _ = fix_unsubscribe(before, LINKS, rule_id=rule_id)
    header_problems = [
        verdict
        for verdict in verdicts(after, rule_id)
        if "List-Unsubscribe" in verdict.detail or "one-click" in verdict.detail
    ]
    assert not header_problems, header_problems
    if rule_id != "EU-WITHDRAW-EASY":  # that one also wants a body link: see test_footer
        assert not fix_verdicts(after, rule_id)


def test_change_becomes_an_audit_record() -> None:
    change = Change("MBP-ONECLICK", "List-Unsubscribe", None, GOOD_VALUE)
    base = AuditEvent(
        time="2025-06-02T12:00:00+00:00",
        stage="data",
        action="accept",
        mail_from="news@shop.example",
        recipient_hash="h",
    )
    event = change.audit(base)
    assert (event.action, event.rule_id) == ("fix", "MBP-ONECLICK")
    assert event.inputs == {"field": "List-Unsubscribe", "old": None, "new": GOOD_VALUE}
