"""The identity footer: into every text part a reader sees, encoded as the part was, once."""

from __future__ import annotations

from dataclasses import replace

import pytest

from relay.message_parsing import parse_message
from relay.policy import inspect
from relay.rewrite import Rewrite, Unfixable, raw
from relay.rewrite.footer import FooterLabels, fix_footer, html_footer, plain_footer
from relay.rewrite.unsubscribe import fix_unsubscribe
from relay.stores.models import SenderProfile
from tests.policy.builders import SENDER
from tests.rewrite.messages import (
    HEAD,
    LINKS,
    MESSAGES,
    MIME,
    PLAIN_TEXT,
    TEXT_LEAVES,
    applied,
    assert_only_changed,
    assert_well_formed,
    build,
    content,
    fix_verdicts,
    leaf,
    parts,
    verdicts,
)

RULE = "US-POSTAL-ADDRESS"
FOOTER_RULES = ("US-POSTAL-ADDRESS", "EU-EPR-IDENTITY-FOOTER", "PRC-ADLAW-IDENTITY")
BODY_LINK_RULES = ("EU-WITHDRAW-EASY", "MBP-BODY-UNSUB")

# Expected (Content-Transfer-Encoding, charset) of each changed leaf after the fix.
ENCODINGS = {
    "plain": {"": ("7bit", None)},
    "plain-no-mime": {"": (None, None)},
    "plain-7bit-ascii": {"": ("7bit", "us-ascii")},
    "plain-8bit-utf8": {"": ("8bit", "utf-8")},
    "plain-qp-utf8": {"": ("quoted-printable", "utf-8")},
    "plain-base64-gb2312": {"": ("base64", "gb2312")},
    "plain-latin1-qp": {"": ("quoted-printable", "iso-8859-1")},
    "html-only-qp": {"": ("quoted-printable", "utf-8")},
    "html-only-no-body-tag": {"": ("7bit", "utf-8")},
    "alternative": {"1": ("base64", "utf-8"), "2": ("quoted-printable", "utf-8")},
    "nested-mixed": {"1.1": ("7bit", "us-ascii"), "1.2": ("8bit", "utf-8")},
}


def _fix(
    message: bytes, sender: SenderProfile = SENDER, rule_id: str = RULE
) -> Rewrite | Unfixable:
    return fix_footer(message, sender, LINKS, rule_id=rule_id)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_footer_goes_into_each_text_part_once(name: str) -> None:
    before = MESSAGES[name]
    after, changes = applied(_fix(before))
    assert_well_formed(after)
    leaves = TEXT_LEAVES[name]
    assert_only_changed(before, after, leaves)
    located = parts(after)
    old = parts(before)
    for path in leaves:
        part = located[path].parsed
        text = content(part)
        original = content(old[path].parsed)
        # What was there stays, the footer follows it (HTML: before </body> if there is one).
        assert text.replace("\r\n", "\n").count(SENDER.postal_address) == 1
        assert text.count(SENDER.legal_name) == 1
        assert text.count(LINKS.https) == 1
        assert LINKS.mailto in text
        if part.get_content_type() == "text/html":
            assert "</body>" not in original.lower() or text.lower().rindex(
                SENDER.legal_name.lower()
            ) < text.lower().rindex("</body>")
        else:
            assert text.startswith(original.rstrip("\n"))
        encoding, charset = ENCODINGS[name][path]
        assert (part.get("Content-Transfer-Encoding") or None) == encoding
        assert part.get_param("charset") == charset
    # One change per footer, naming the part; nothing else changed.
    assert [change.field for change in changes] == [raw.label(located[path]) for path in leaves]
    assert all(change.rule_id == RULE and change.old is None for change in changes)
    assert all(SENDER.legal_name in (change.new or "") for change in changes)


@pytest.mark.parametrize("name", list(MESSAGES))
def test_footer_is_idempotent(name: str) -> None:
    once, _ = applied(_fix(MESSAGES[name]))
    assert applied(_fix(once)) == (once, [])


@pytest.mark.parametrize("name", list(MESSAGES))
@pytest.mark.parametrize("rule_id", FOOTER_RULES + BODY_LINK_RULES)
def test_the_rules_accept_the_footer(name: str, rule_id: str) -> None:
    """With the relay's List-Unsubscribe in place, the body rules trip before the footer and
    not after it: fix and rule agree."""
    before, _ = fix_unsubscribe(MESSAGES[name], LINKS, rule_id="MBP-ONECLICK")
    assert verdicts(before, rule_id)
    after, _ = applied(_fix(before, rule_id=rule_id))
    assert not verdicts(after, rule_id)


@pytest.mark.parametrize("rule_id", FOOTER_RULES)
def test_rule_trips_before_and_not_after(rule_id: str) -> None:
    before = MESSAGES["alternative"]
    assert fix_verdicts(before, rule_id)
    after, _ = applied(_fix(before, rule_id=rule_id))
    assert not fix_verdicts(after, rule_id)


def test_a_body_that_shows_everything_gets_no_footer() -> None:
    text = (
        f"Hello.\r\n{SENDER.legal_name}, {SENDER.postal_address}\r\n"
        f"Contact: {SENDER.contact}\r\nUnsubscribe: https://shop.example/unsubscribe\r\n"
    )
    message = build(MIME, leaf("text/plain; charset=utf-8", "7bit", text))
    assert applied(_fix(message)) == (message, [])


def test_only_what_a_part_lacks_is_added() -> None:
    # The address is there (wrapped and cased differently): name, contact and link are added.
    text = "Hello.\r\nWrite to us: 1 MARKET STREET,\r\nSpringfield, IL 62701\r\n"
    message = build(MIME, leaf("text/plain; charset=utf-8", "7bit", text))
    after, (change,) = applied(_fix(message))
    added = content(parse_message(after))[len(text) :]
    assert "Market Street" not in added
    assert SENDER.legal_name in added
    assert SENDER.contact in added
    assert LINKS.https in added
    assert change.new == added.strip()


def test_footer_values_are_escaped_in_html() -> None:
    sender = replace(
        SENDER, legal_name='Smith & <Sons> "Ltd"', contact="https://shop.example/c?a=1&b=2"
    )
    footer = html_footer(sender, LINKS)
    assert "Smith &amp; &lt;Sons&gt; &quot;Ltd&quot;" in footer
    assert 'href="https://shop.example/c?a=1&amp;b=2"' in footer
    message = build(
        MIME, leaf("text/html; charset=utf-8", "7bit", "<html><body><p>x</p></body></html>\r\n")
    )
    after, _ = applied(_fix(message, sender))
    (seen,) = inspect.text_parts(parse_message(after))
    assert 'Smith & <Sons> "Ltd"' in seen.text
    assert applied(_fix(after, sender)) == (after, [])


def test_footer_has_compliance_content_only() -> None:
    """PRC-NO-AD-INJECTION: the footer says the profile's values, the labels and the links,
    and nothing else."""
    labels = FooterLabels()
    known = (
        SENDER.legal_name,
        SENDER.postal_address,
        SENDER.contact,
        LINKS.https,
        LINKS.mailto,
        labels.unsubscribe_by_email,
        labels.unsubscribe,
        labels.contact,
    )
    html_part = build(MIME, leaf("text/html", "7bit", html_footer(SENDER, LINKS)))
    plain_part = build(MIME, leaf("text/plain", "7bit", plain_footer(SENDER, LINKS)))
    for message in (html_part, plain_part):
        (seen,) = inspect.text_parts(parse_message(message))
        words = seen.text
        for value in known:
            words = words.replace(value, " ")
        assert not words.replace(":", " ").replace("|", " ").split(), words
        assert len(seen.links) == (3 if message is html_part else 2)


def test_a_charset_that_cannot_carry_the_footer_becomes_utf8() -> None:
    sender = replace(SENDER, legal_name="深圳示例有限公司")
    before = (
        build(MIME)
        + b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        + b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe\r\n"
    )
    after, changes = applied(_fix(before, sender))
    part = parse_message(after)
    assert part.get_param("charset") == "utf-8"
    assert content(part).replace("\r\n", "\n").startswith("Grüße\n")
    assert "深圳示例有限公司" in content(part)
    assert [c.field for c in changes] == ["body text/plain", "body text/plain charset"]
    assert changes[1].old == "iso-8859-1"
    assert changes[1].new == "utf-8"


def test_a_7bit_part_given_non_ascii_becomes_quoted_printable() -> None:
    sender = replace(SENDER, legal_name="深圳示例有限公司")
    before = MESSAGES["plain-no-mime"]
    after, changes = applied(_fix(before, sender))
    part = parse_message(after)
    assert part["MIME-Version"] == "1.0"
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_param("charset") == "utf-8"
    assert content(part).replace("\r\n", "\n").startswith(PLAIN_TEXT.replace("\r\n", "\n"))
    assert [c.field for c in changes] == [
        "body text/plain",
        "body text/plain charset",
        "body text/plain Content-Transfer-Encoding",
    ]
    assert_well_formed(after)
    assert applied(_fix(after, sender)) == (after, [])


def test_gb2312_part_keeps_its_charset_for_a_chinese_footer() -> None:
    sender = replace(SENDER, legal_name="深圳示例有限公司", postal_address="深圳市南山区科技园1号")
    after, changes = applied(_fix(MESSAGES["plain-base64-gb2312"], sender))
    part = parse_message(after)
    assert part.get_param("charset") == "gb2312"
    assert "深圳示例有限公司" in content(part)
    assert [c.field for c in changes] == ["body text/plain"]


def test_a_part_that_cannot_be_decoded_is_unfixable() -> None:
    message = build(MIME, leaf("text/plain; charset=x-unknown", "7bit", "hello\r\n"))
    assert isinstance(_fix(message), Unfixable)
    message = build(MIME, leaf("text/plain", "x-uuencode", "begin 644 x\r\n"))
    assert isinstance(_fix(message), Unfixable)


def test_a_message_without_text_parts_is_unfixable() -> None:
    message = build(MIME, leaf("image/png", "base64", "iVBORw0KGgo=\r\n"))
    result = _fix(message)
    assert isinstance(result, Unfixable)
    assert result.rule_id == RULE


def test_footer_is_not_added_to_an_attached_message() -> None:
    before = MESSAGES["nested-mixed"]
    after, _ = applied(_fix(before))
    attached = parts(after)["4"].parsed
    assert SENDER.legal_name not in attached.as_string()
    assert HEAD.splitlines()[0] in after.decode()
