"""The fixes together, in plan order, on messages that need every one: afterwards no rule that
ordered a fix still finds anything, and a second round changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay.policy.model import Action, Stage
from relay.rewrite import Change, Unfixable
from relay.rewrite.footer import fix_footer
from relay.rewrite.long_lines import fix_long_lines
from relay.rewrite.plan import FIXES, ORDER, Fix
from relay.rewrite.required_headers import fix_required_headers
from relay.rewrite.subject_prefix import fix_subject_prefix
from relay.rewrite.unsubscribe import fix_unsubscribe
from tests.policy.builders import SENDER
from tests.rewrite.messages import (
    ALL_JURISDICTIONS,
    ENGINE,
    LINKS,
    MESSAGES,
    assert_well_formed,
    make_context,
    with_head,
)


def _apply(message: bytes) -> tuple[bytes, list[Change]]:
    steps = {
        Fix.REQUIRED_HEADERS: lambda m: fix_required_headers(
            m,
            domain="shop.example",
            now=datetime(2025, 6, 2, tzinfo=UTC),
            message_id="<a@shop.example>",
        ),
        Fix.UNSUBSCRIBE: lambda m: fix_unsubscribe(m, LINKS, rule_id="MBP-ONECLICK"),
        Fix.SUBJECT_PREFIX: lambda m: fix_subject_prefix(m, "【广告】"),
        Fix.FOOTER: lambda m: fix_footer(m, SENDER, LINKS, rule_id="US-POSTAL-ADDRESS"),
        Fix.LONG_LINES: fix_long_lines,
    }
    changes: list[Change] = []
    for fix in ORDER:
        result = steps[fix](message)
        assert not isinstance(result, Unfixable), result
        message, made = result
        changes += made
    return message, changes


def _fix_verdicts(message: bytes) -> list[str]:
    context = make_context(raw=message, jurisdictions=ALL_JURISDICTIONS)
    return [
        verdict.rule_id
        for verdict in ENGINE.evaluate(Stage.DATA, context).verdicts
        if verdict.action is Action.FIX
        and verdict.rule_id in FIXES
        and verdict.inputs.get("remedy", "fix") == "fix"
    ]


@pytest.mark.parametrize("name", list(MESSAGES))
def test_every_fix_together(name: str) -> None:
    before = with_head(MESSAGES[name], Date=None, Message_ID=None)
    assert _fix_verdicts(before)
    after, changes = _apply(before)
    assert_well_formed(after)
    assert _fix_verdicts(after) == []
    assert {change.field for change in changes} >= {
        "Date",
        "Message-ID",
        "Subject",
        "List-Unsubscribe",
    }
    assert _apply(after) == (after, [])
