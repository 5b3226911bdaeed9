"""Missing Date and Message-ID added at the top of the header section, never duplicated."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest

from relay.message_parsing import parse_message
from relay.rewrite import Change, raw
from relay.rewrite.required_headers import fix_required_headers, new_message_id
from tests.rewrite.messages import (
    MESSAGES,
    assert_only_changed,
    assert_well_formed,
    fix_verdicts,
    verdicts,
    with_head,
)

RULE = "RFC-5322-REQUIRED"
NOW = datetime(2025, 6, 2, 14, 30, 5, tzinfo=timezone(timedelta(hours=2)))


def _fix(message: bytes) -> tuple[bytes, list[Change]]:
    return fix_required_headers(
        message, domain="shop.example", now=NOW, message_id="<x1@shop.example>"
    )


@pytest.mark.parametrize("name", list(MESSAGES))
@pytest.mark.parametrize(
    ("missing", "added"),
    [
        (("Date",), ["Date"]),
        (("Message-ID",), ["Message-ID"]),
        (("Date", "Message-ID"), ["Date", "Message-ID"]),
        ((), []),
    ],
)
def test_missing_fields_are_added_on_top(
    name: str, missing: tuple[str, ...], added: list[str]
) -> None:
    before = with_head(MESSAGES[name], **{field.replace("-", "_"): None for field in missing})
    if missing:
        assert fix_verdicts(before, RULE)
    after, changes = _fix(before)
    assert_well_formed(after)
    assert_only_changed(before, after)
    items = raw.fields(raw.split(after)[0])
    assert [item.name for item in items[: len(added)]] == added
    assert raw.join(items[len(added) :]) == raw.split(before)[0]
    expected = {"Date": "Mon, 02 Jun 2025 12:30:05 +0000", "Message-ID": "<x1@shop.example>"}
    assert changes == [Change(RULE, field, None, expected[field]) for field in added]
    parsed = parse_message(after)
    assert parsedate_to_datetime(parsed["Date"]) == NOW if "Date" in missing else True
    assert not fix_verdicts(after, RULE)
    assert not verdicts(after, RULE)
    assert _fix(after) == (after, [])


def test_present_fields_are_never_touched_or_duplicated() -> None:
    before = with_head(MESSAGES["plain"], Date="not a date", Message_ID="")
    assert _fix(before) == (before, [])


def test_generated_message_ids_are_unique_and_under_the_domain() -> None:
    ids = {new_message_id("Shop.Example") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"<[0-9a-f]{32}@shop\.example>", i) for i in ids)
    with pytest.raises(ValueError, match="domain"):
        new_message_id("shop example>")
    before = with_head(MESSAGES["plain"], Message_ID=None)
    _after, (change,) = fix_required_headers(before, domain="shop.example", now=datetime.now(UTC))
    assert change.new is not None
    assert change.new.endswith("@shop.example>")


def test_a_message_of_body_only() -> None:
    after, changes = _fix(b"\r\nbody\r\n")
    assert after.startswith(b"Date: ")
    assert after.endswith(b">\r\n\r\nbody\r\n")
    assert len(changes) == 2
