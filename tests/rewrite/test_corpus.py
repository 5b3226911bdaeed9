"""Every fix over the shared MIME corpus (malformed and hard messages): no exception, either
Unfixable or a message that is unchanged outside what the fix names, and idempotent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from relay.rewrite import Change, Rewrite, Unfixable, raw
from relay.rewrite.footer import fix_footer
from relay.rewrite.long_lines import fix_long_lines
from relay.rewrite.required_headers import fix_required_headers
from relay.rewrite.subject_prefix import fix_subject_prefix
from relay.rewrite.unsubscribe import fix_unsubscribe
from tests.policy.builders import SENDER
from tests.policy.cases import CORPUS_FILES, MIME_CORPUS
from tests.rewrite.messages import LINKS, assert_only_changed

NOW = datetime(2025, 6, 2, tzinfo=UTC)
FIXES = {
    "required_headers": lambda m: fix_required_headers(
        m, domain="shop.example", now=NOW, message_id="<c@shop.example>"
    ),
    "unsubscribe": lambda m: fix_unsubscribe(m, LINKS, rule_id="MBP-ONECLICK"),
    "subject_prefix": lambda m: fix_subject_prefix(m, "【广告】"),
    "footer": lambda m: fix_footer(m, SENDER, LINKS, rule_id="US-POSTAL-ADDRESS"),
    "long_lines": fix_long_lines,
}
_PART = re.compile(r"^body (?:([\d.]+) )?\S+/\S+$")


def _crlf(data: bytes) -> bytes:
    return re.sub(rb"\r?\n|\r", b"\r\n", data)


def _changed_parts(changes: list[Change]) -> set[str]:
    found = set()
    for change in changes:
        match = _PART.match(
            change.field.removesuffix(" Content-Transfer-Encoding").removesuffix(" charset")
        )
        if match:
            found.add(match.group(1) or "")
    return found


def test_corpus_is_present() -> None:
    assert len(CORPUS_FILES) > 50, f"no MIME corpus at {MIME_CORPUS}"


@pytest.mark.parametrize("fix", list(FIXES))
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_fix_on_corpus_message(name: str, fix: str) -> None:
    before = _crlf((MIME_CORPUS / name).read_bytes())
    result: Rewrite | Unfixable = FIXES[fix](before)
    if isinstance(result, Unfixable):
        return
    after, changes = result
    if not changes:
        assert after == before
        return
    try:
        raw.locate(before)
    except raw.StructureError:
        assert raw.split(after)[1] == raw.split(before)[1]  # a header fix on an odd body
    else:
        assert_only_changed(before, after, _changed_parts(changes))
    again = FIXES[fix](after)
    assert not isinstance(again, Unfixable)
    assert again == (after, [])
