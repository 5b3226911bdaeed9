"""Cadence rules through policies/cadence.toml: frequency caps at RCPT (452 4.2.2 with the time
the window frees), duplicate campaigns and duplicate content at end of data; transactional mail
is never counted."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest
import tomli_w

from relay.policy import inspect
from relay.policy.files import load_policies
from relay.policy.model import Action, Stage
from relay.policy.rules.cadence import FREQUENCY_CAP, history_window
from relay.stores.history import Delivery
from relay.stores.models import MessageClass
from tests.policy.builders import (
    NOW,
    evaluate,
    load_policy,
    make_context,
    message,
    parse,
    policy_path,
    verdicts_for,
)
from tests.policy.cases import (
    bound_rule_ids,
    case,
    check_catalogue_default,
    outcomes,
    table_tests,
)

POLICY = "cadence.toml"
BASE = {"jurisdictions": (), "send_history": ()}
CAP = FREQUENCY_CAP
CAMPAIGN = "CADENCE-DUPLICATE-CAMPAIGN"
CONTENT = "CADENCE-DUPLICATE-CONTENT"
EXPECTED = {
    CAP: ("defer", "452 4.2.2"),
    CAMPAIGN: ("reject", "550 5.7.1"),
    CONTENT: ("reject", "550 5.7.1"),
}
SAME_CONTENT = inspect.content_hash(parse(message()))
RCPT_ONLY = {"message": None, "raw": None}
TRANSACTIONAL = MessageClass.TRANSACTIONAL


def sent(
    ago: timedelta, list_id: str | None = "newsletter", content: str | None = None
) -> Delivery:
    return Delivery("shop", "ab" * 32, NOW - ago, f"q{ago.total_seconds():.0f}", list_id, content)


def history(*agos: timedelta, **fields: str | None) -> tuple[Delivery, ...]:
    return tuple(sent(ago, **fields) for ago in sorted(agos, reverse=True))


HOURS, DAYS = timedelta(hours=1), timedelta(days=1)
TWO_TODAY = history(2 * HOURS, 5 * HOURS)
SIX_THIS_MONTH = history(*(days * DAYS for days in (2, 6, 10, 14, 18, 22)))

CASES = [
    case(CAP, False, "one today", send_history=history(2 * HOURS), **RCPT_ONLY),
    case(CAP, True, "two today", send_history=TWO_TODAY, **RCPT_ONLY),
    case(CAP, False, "two yesterday", send_history=history(25 * HOURS, 30 * HOURS), **RCPT_ONLY),
    case(CAP, True, "six this month", send_history=SIX_THIS_MONTH, **RCPT_ONLY),
    case(CAP, False, "five this month", send_history=SIX_THIS_MONTH[1:], **RCPT_ONLY),
    case(CAP, False, "transactional", send_history=TWO_TODAY, message_class=TRANSACTIONAL),
    case(CAP, False, "history not gathered", send_history=None, **RCPT_ONLY),
    case(
        CAP,
        False,
        "mixed stream waits for the data",
        send_history=TWO_TODAY,
        message_class=MessageClass.MIXED,
        **RCPT_ONLY,
    ),
    case(
        CAP, True, "mixed message at data", send_history=TWO_TODAY, message_class=MessageClass.MIXED
    ),
    case(CAP, True, "two today at data", send_history=TWO_TODAY),
    case(
        CAP,
        False,
        "per list: another list",
        params={"per_list": True},
        send_history=history(2 * HOURS, 5 * HOURS, list_id="offers"),
    ),
    case(CAP, True, "per list: this list", params={"per_list": True}, send_history=TWO_TODAY),
    case(
        CAP,
        False,
        "per list: decided at data",
        params={"per_list": True},
        send_history=TWO_TODAY,
        **RCPT_ONLY,
    ),
    case(
        CAP,
        True,
        "a tightened window",
        params={"windows": [{"count": 1, "period": "7d"}]},
        send_history=history(3 * DAYS),
        **RCPT_ONLY,
    ),
    case(CAMPAIGN, True, "sent before", send_history=history(10 * DAYS)),
    case(CAMPAIGN, False, "another campaign", send_history=history(10 * DAYS, list_id="offers")),
    case(CAMPAIGN, False, "no campaign named", send_history=history(10 * DAYS), list_id=None),
    case(CAMPAIGN, False, "outside the period", send_history=history(400 * DAYS)),
    case(CAMPAIGN, False, "transactional", send_history=history(DAYS), message_class=TRANSACTIONAL),
    case(
        CAMPAIGN, True, "twice allowed", params={"count": 2}, send_history=history(DAYS, 2 * DAYS)
    ),
    case(
        CAMPAIGN, False, "twice allowed, once sent", params={"count": 2}, send_history=history(DAYS)
    ),
    case(
        CONTENT, False, "twice before", send_history=history(DAYS, 9 * DAYS, content=SAME_CONTENT)
    ),
    case(
        CONTENT,
        True,
        "three times before",
        send_history=history(DAYS, 5 * DAYS, 9 * DAYS, list_id=None, content=SAME_CONTENT),
    ),
    case(
        CONTENT,
        False,
        "three times, long ago",
        send_history=history(40 * DAYS, 45 * DAYS, 50 * DAYS, content=SAME_CONTENT),
    ),
    case(
        CONTENT,
        False,
        "other content",
        send_history=history(DAYS, 5 * DAYS, 9 * DAYS, content="00" * 16),
    ),
    case(
        CONTENT,
        True,
        "a fixed copy is compared as the sender wrote it",
        text="the same text with a footer added",
        content_hash=SAME_CONTENT,
        send_history=history(DAYS, 5 * DAYS, 9 * DAYS, content=SAME_CONTENT),
    ),
]

test_rule, test_the_default_message_passes_every_rule = table_tests(
    POLICY, CASES, base=BASE, replies={CAP: (452, "4.2.2")}
)


def test_every_bound_rule_has_passing_and_tripping_cases():
    assert bound_rule_ids(POLICY) == set(EXPECTED)
    for rule_id in EXPECTED:
        assert outcomes(CASES, rule_id) == {True, False}, rule_id


@pytest.mark.parametrize(("rule_id", "expected"), EXPECTED.items())
def test_policy_binds_the_documented_defaults(rule_id, expected):
    check_catalogue_default(POLICY, rule_id, expected)


def test_the_cap_reply_names_the_rule_and_when_the_window_frees():
    context = make_context(**BASE | {"send_history": TWO_TODAY}, **RCPT_ONLY)
    (verdict,) = verdicts_for(evaluate(load_policy(POLICY), Stage.RCPT, context), CAP)
    frees_at = (NOW - 5 * HOURS + DAYS).isoformat(timespec="seconds")
    assert verdict.reply is not None
    assert str(verdict.reply).startswith("452 4.2.2 ")
    assert CAP in verdict.reply.text
    assert verdict.reply.text.endswith(f"the window frees at {frees_at}")
    assert verdict.inputs["frees_at"] == frees_at
    assert verdict.inputs["sent"] == 2


def test_the_latest_freeing_window_decides_when_several_trip():
    both = history(1 * HOURS, 2 * HOURS, *(days * DAYS for days in (3, 8, 12, 20)))
    context = make_context(**BASE | {"send_history": both}, **RCPT_ONLY)
    (verdict,) = verdicts_for(evaluate(load_policy(POLICY), Stage.RCPT, context), CAP)
    # Two today (room again in 22 h) and six in 30 days: room again when the oldest, sent 20
    # days ago, leaves the 30-day window, 10 days from now; the later of the two decides.
    frees_at = NOW - 20 * DAYS + 30 * DAYS
    assert verdict.inputs["frees_at"] == frees_at.isoformat(timespec="seconds")


def test_an_operator_may_make_the_cap_refuse(tmp_path):
    data = tomllib.loads(policy_path(POLICY).read_text("utf-8"))
    data["rules"][CAP] |= {"action": "reject", "reply": "550 5.7.1 Too much mail to this recipient"}
    path = tmp_path / POLICY
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    (policy,) = load_policies([path])
    context = make_context(**BASE | {"send_history": TWO_TODAY}, **RCPT_ONLY)
    (verdict,) = verdicts_for(evaluate(policy, Stage.RCPT, context), CAP)
    assert verdict.action is Action.REJECT
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.status) == (550, "5.7.1")
    assert "the window frees at" in verdict.reply.text


def test_the_history_read_covers_the_longest_configured_period(tmp_path):
    assert history_window([load_policy(POLICY)]) == timedelta(days=365)
    data = tomllib.loads(policy_path(POLICY).read_text("utf-8"))
    data["rules"][CAMPAIGN]["params"]["period"] = "10d"
    path = tmp_path / POLICY
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    assert history_window(load_policies([path])) == timedelta(days=30)
    assert history_window([]) == timedelta(0)


def test_content_hash_ignores_links_addresses_case_and_wrapping():
    plain = (
        "Our summer sale starts today.\nUnsubscribe: https://shop.example/u/AAAA\nann@example.net"
    )
    other = (
        "our SUMMER sale\n starts today.\nUnsubscribe: https://shop.example/u/BBBB\nbob@example.org"
    )
    assert inspect.content_hash(parse(message(text=plain, html=None))) == inspect.content_hash(
        parse(message(text=other, html=None))
    )
    assert inspect.content_hash(parse(message(text=plain, html=None))) != inspect.content_hash(
        parse(message({"Subject": "Winter sale"}, text=plain, html=None))
    )
