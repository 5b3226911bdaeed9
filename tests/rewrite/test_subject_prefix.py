"""The PRC 广告 / AD Subject prefix: RFC 2047 aware, never doubled, accepted by the rule."""

from __future__ import annotations

import pytest

from relay.message_parsing import parse_message
from relay.policy import inspect
from relay.rewrite import Change, raw
from relay.rewrite.subject_prefix import encode_words, fix_subject_prefix, has_ad_prefix
from tests.rewrite.messages import (
    MESSAGES,
    assert_only_changed,
    assert_well_formed,
    fix_verdicts,
    with_head,
)

RULE = "PRC-SUBJECT-AD-PREFIX"
CN = "【广告】"
AD = "[AD] "

# (raw Subject value, decoded)
UNMARKED = {
    "ascii": ("Summer sale: 20% off", "Summer sale: 20% off"),
    "b utf-8": ("=?UTF-8?B?5aSP5a2j5L+D6ZSA?=", "夏季促销"),
    "q utf-8": ("=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_Berlin?=", "Grüße aus Berlin"),
    "b gb2312": ("=?GB2312?B?z8S8vrTZz/o=?=", "夏季促销"),
    "q gbk": ("=?gbk?Q?=CF=C4=BC=BE_sale?=", "夏季 sale"),
    "mixed words": ("Hello =?UTF-8?B?5LiW55WM?= again", "Hello 世界 again"),
    "raw 8-bit utf-8": ("Grüße 你好", "Grüße 你好"),
    "ADVENTURE": ("ADVENTURE awaits", "ADVENTURE awaits"),
    "case mismatch": ("Ad: spring offer", "Ad: spring offer"),
    "long ascii": ("Sale " * 30, ("Sale " * 30).strip()),
    "long chinese": ("=?UTF-8?B?" + "5aSP5a2j5L+D6ZSA" * 12 + "?=", "夏季促销" * 12),
    "empty": ("", ""),
}
MARKED = {
    "cn bracket": "【广告】夏季促销",
    "ascii bracket": "[AD] Summer sale",
    "bare AD": "AD: sale",
    "leading space": "  广告 夏季促销",
    "paren": "(AD) sale",
    "encoded 广告": "=?UTF-8?B?44CQ5bm/5ZGK44CR5aSP5a2j?=",
    "encoded gbk": "=?GBK?B?ueO45g==?= sale",
}


def _subject(message: bytes) -> str:
    return inspect.subject(parse_message(message))


def _message(value: str | None, name: str = "alternative") -> bytes:
    return with_head(MESSAGES[name], Subject=value)


@pytest.mark.parametrize("prefix", [CN, AD])
@pytest.mark.parametrize("case", list(UNMARKED))
def test_prefix_is_added(case: str, prefix: str) -> None:
    value, decoded = UNMARKED[case]
    before = _message(value)
    assert _subject(before) == decoded  # the case is what it says
    after, changes = fix_subject_prefix(before, prefix)
    assert_well_formed(after)
    assert_only_changed(before, after)
    expected = (prefix + decoded).strip()
    assert _subject(after) == expected
    assert changes == [Change(RULE, "Subject", decoded, expected)]
    (field,) = [item for item in raw.fields(raw.split(after)[0]) if item.key == "subject"]
    lines = field.raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 78 for line in lines)
    if not field.raw.isascii() or not (prefix + value).isascii() or "=?" in value:
        # Written anew as UTF-8 "B" encoded-words.
        assert field.raw.startswith(b"Subject: =?UTF-8?B?")
    else:
        assert field.raw.startswith(b"Subject: " + prefix.strip().encode())
    assert not fix_verdicts(after, RULE)
    assert fix_subject_prefix(after, prefix) == (after, [])


@pytest.mark.parametrize("case", list(MARKED))
@pytest.mark.parametrize("prefix", [CN, AD])
def test_prefix_is_never_doubled(case: str, prefix: str) -> None:
    before = _message(MARKED[case], "plain")
    assert not fix_verdicts(before, RULE)
    assert fix_subject_prefix(before, prefix) == (before, [])


def test_ascii_subject_keeps_its_bytes_and_folding() -> None:
    before = MESSAGES["plain"].replace(b"Subject: Summer sale", b"Subject: Summer\r\n sale")
    after, _ = fix_subject_prefix(before, AD)
    assert b"Subject: [AD] Summer\r\n sale\r\n" in after


def test_missing_subject_gets_the_prefix() -> None:
    before = _message(None, "plain")
    after, changes = fix_subject_prefix(before, CN)
    assert _subject(after) == "【广告】"
    assert changes == [Change(RULE, "Subject", None, "【广告】")]
    after, _ = fix_subject_prefix(before, AD)
    assert raw.split(after)[0].endswith(b"Subject: [AD]\r\n")


def test_the_rule_trips_before_the_fix() -> None:
    assert fix_verdicts(_message("Summer sale"), RULE)


def test_detection_matches_the_rule() -> None:
    for subject in ("广告", "【AD】x", "AD", "AD!", " [广告]"):
        assert has_ad_prefix(subject), subject
    for subject in ("ADVENTURE", "Ad: x", "[[AD]", "x 广告", ""):
        assert not has_ad_prefix(subject), subject
    with pytest.raises(ValueError, match="does not mark"):
        fix_subject_prefix(MESSAGES["plain"], "Promo: ")


def test_encoded_words_split_between_characters() -> None:
    text = "【广告】" + "夏季促销😀" * 20
    lines = encode_words(text, 78 - len("Subject: "))
    assert len(lines[0]) <= 69
    assert all(len(line) <= 78 and line.startswith(" =?UTF-8?B?") for line in lines[1:])
    folded = "Subject: " + "\r\n".join(lines) + "\r\n\r\n"
    assert _subject(folded.encode()) == text
