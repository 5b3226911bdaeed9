"""Protocol rules through policies/protocol.toml (COMPLIANCE §8): for each rule, messages that
pass and messages that trip it, with the action, citation and reply the policy file binds; and
the MIME corpus runs through every DATA rule of protocol.toml and mailbox-providers.toml
without raising."""

from __future__ import annotations

import pytest

from relay.policy.files import load_policies
from relay.policy.model import Stage
from relay.stores.models import MessageClass
from tests.policy.builders import (
    evaluate,
    load_policy,
    make_context,
    message,
    policy_path,
    verdicts_for,
)
from tests.policy.cases import (
    CORPUS_FILES,
    MIME_CORPUS,
    bound_rule_ids,
    case,
    check_catalogue_default,
    corpus_message,
    outcomes,
    table_tests,
)

POLICY = "protocol.toml"
BASE = {"jurisdictions": ()}  # no jurisdiction: the policy applies to every recipient
REPLY = (554, "5.6.0")  # COMPLIANCE §0: malformed RFC 5322 the relay will not fix

EXPECTED = {
    "RFC-5322-REQUIRED": ("reject", "554 5.6.0"),
    "RFC-5322-LINELEN": ("reject", "554 5.6.0"),
    "RFC-LU-SYNTAX": ("fix", "554 5.6.0"),
    "RFC-LUP-EXACT": ("fix", "554 5.6.0"),
    "RFC-LISTID": ("warn", None),
}


def with_lines(*lines: str, body: str | None = None, **headers: str | None) -> bytes:
    """The default message with raw header lines put in front (duplicates, over-long fields:
    what the message builder would not write), and optionally a plain raw body."""
    raw = message(headers) if body is None else message(headers, text="", html=None)
    head, _, rest = raw.partition(b"\r\n\r\n")
    if body is not None:
        rest = body.encode()
    return "".join(f"{line}\r\n" for line in lines).encode() + head + b"\r\n\r\n" + rest


def lu_case(trips: bool, name: str, value: str):
    return case("RFC-LU-SYNTAX", trips, name, headers={"List-Unsubscribe": value})


def list_id_case(trips: bool, name: str, value: str):
    return case("RFC-LISTID", trips, name, headers={"List-Id": value})


ONE_LINE = {"List-Unsubscribe": None}  # the builder folds long List-Unsubscribe values
CASES = [
    case("RFC-5322-REQUIRED", False, "complete"),
    case(
        "RFC-5322-REQUIRED",
        False,
        "repeatable fields twice",
        raw=with_lines("Keywords: a", "Keywords: b", "Comments: c", "Comments: d"),
    ),
    case("RFC-5322-REQUIRED", True, "two Subjects", raw=with_lines("Subject: again")),
    case("RFC-5322-REQUIRED", True, "two Froms", raw=with_lines("from: other@shop.example")),
    case("RFC-5322-REQUIRED", True, "two Message-IDs", raw=with_lines("Message-ID: <x@a.b>")),
    case("RFC-5322-REQUIRED", True, "no From", headers={"From": None}),
    case("RFC-5322-REQUIRED", True, "empty From", raw=with_lines("From: ", From=None)),
    case("RFC-5322-REQUIRED", True, "no Date", headers={"Date": None}),
    case("RFC-5322-REQUIRED", True, "no Message-ID", headers={"Message-ID": None}),
    case("RFC-5322-LINELEN", False, "short lines"),
    case(
        "RFC-5322-LINELEN",
        False,
        "998 octets",
        raw=with_lines("X-Long: " + "y" * 990, body="z" * 998 + "\r\n"),
    ),
    case("RFC-5322-LINELEN", True, "header line of 1007", raw=with_lines("X-Long: " + "x" * 999)),
    case("RFC-5322-LINELEN", True, "body line of 999", raw=with_lines(body="a\r\n" + "x" * 999)),
    case("RFC-LU-SYNTAX", False, "mailto and https"),
    case("RFC-LU-SYNTAX", False, "absent", headers={"List-Unsubscribe": None}),
    lu_case(False, "one URI with a comment", "<https://shop.example/u/1> (one click)"),
    lu_case(True, "no brackets", "https://shop.example/u/1"),
    lu_case(True, "semicolons", "<https://shop.example/u/1>; <mailto:u@shop.example>"),
    lu_case(True, "no scheme", "<shop.example/u/1>"),
    case(
        "RFC-LU-SYNTAX",
        True,
        "whitespace inside the brackets",
        raw=with_lines("List-Unsubscribe: <https://shop.example/u/ 1>", **ONE_LINE),
    ),
    case("RFC-LUP-EXACT", False, "exact"),
    case(
        "RFC-LUP-EXACT",
        False,
        "no post field",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>", "List-Unsubscribe-Post": None},
    ),
    case(
        "RFC-LUP-EXACT",
        True,
        "an extra key",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click&list=2"},
    ),
    case(
        "RFC-LUP-EXACT",
        True,
        "other case",
        headers={"List-Unsubscribe-Post": "list-unsubscribe=one-click"},
    ),
    case(
        "RFC-LUP-EXACT",
        True,
        "mailto only",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>"},
    ),
    case(
        "RFC-LUP-EXACT",
        True,
        "two post fields",
        raw=with_lines("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
    ),
    case(
        "RFC-LUP-EXACT",
        True,
        "two List-Unsubscribe fields",
        raw=with_lines("List-Unsubscribe: <https://shop.example/u/2>"),
    ),
    case("RFC-LUP-EXACT", True, "no List-Unsubscribe", headers={"List-Unsubscribe": None}),
    case("RFC-LISTID", False, "absent"),
    list_id_case(False, "with a phrase", "Shop news <weekly.news.shop.example>"),
    list_id_case(True, "another namespace", "<news.other.example>"),
    list_id_case(True, "the namespace is not the domain", "<shop.example>"),
    list_id_case(True, "no brackets", "news@shop.example"),
    case(
        "RFC-LISTID",
        True,
        "two List-Id fields",
        raw=with_lines("List-Id: <a.shop.example>", "List-Id: <b.shop.example>"),
    ),
    case(
        "RFC-LISTID",
        True,
        "over 255 octets",
        raw=with_lines("List-Id: <" + "a" * 250 + ".shop.example>"),
    ),
    case(
        "RFC-LISTID",
        True,
        "required for commercial mail",
        params={"require_for_commercial": True},
    ),
    case(
        "RFC-LISTID",
        False,
        "not required for transactional mail",
        params={"require_for_commercial": True},
        message_class=MessageClass.TRANSACTIONAL,
    ),
]


test_rule, test_the_default_message_passes_every_rule = table_tests(
    POLICY, CASES, base=BASE, reply=REPLY, stages=[Stage.DATA]
)


def test_every_bound_rule_has_passing_and_tripping_cases():
    assert bound_rule_ids(POLICY) == set(EXPECTED)
    for rule_id in EXPECTED:
        assert outcomes(CASES, rule_id) == {True, False}, rule_id


@pytest.mark.parametrize(("rule_id", "expected"), EXPECTED.items())
def test_policy_binds_the_catalogue_defaults(rule_id, expected):
    check_catalogue_default(POLICY, rule_id, expected)


def required(**overrides) -> list:
    context = make_context(**BASE, **overrides)
    return verdicts_for(evaluate(load_policy(POLICY), Stage.DATA, context), "RFC-5322-REQUIRED")


def test_a_missing_date_is_a_fix_and_a_duplicate_a_refusal():
    """One catalogue id, two remedies: each finding names its own, so the rewrite stage can add
    what is missing and leave the rest refused."""
    (missing,) = required(headers={"Date": None, "Message-ID": None})
    assert dict(missing.inputs) == {"missing": ["Date", "Message-ID"], "remedy": "fix"}
    (duplicate,) = required(raw=with_lines("Subject: again", "Cc: a@b.example", "CC: c@d.example"))
    assert duplicate.inputs["remedy"] == "reject"
    assert duplicate.inputs["duplicated"] == {"Cc": 2, "Subject": 2}
    both = required(raw=with_lines("Subject: again", Date=None))
    assert sorted(verdict.inputs["remedy"] for verdict in both) == ["fix", "reject"]


def test_line_length_names_the_part_and_the_line():
    context = make_context(raw=with_lines("X-Long: " + "x" * 999), **BASE)
    (verdict,) = verdicts_for(
        evaluate(load_policy(POLICY), Stage.DATA, context), "RFC-5322-LINELEN"
    )
    assert dict(verdict.inputs) == {
        "part": "header",
        "lines": [1],
        "longest": 1007,
        "remedy": "reject",
    }
    context = make_context(raw=with_lines(body="a\r\n" + "x" * 1200 + "\r\n"), **BASE)
    (verdict,) = verdicts_for(
        evaluate(load_policy(POLICY), Stage.DATA, context), "RFC-5322-LINELEN"
    )
    assert verdict.inputs["part"] == "body"
    assert verdict.inputs["remedy"] == "fix"
    assert verdict.inputs["longest"] == 1200


def test_corpus_is_present():
    assert len(CORPUS_FILES) > 50, f"no MIME corpus at {MIME_CORPUS}"


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_runs_through_every_data_rule(name):
    """Both policy files, commercial and transactional: findings or none, never an exception,
    whatever the MIME."""
    raw = corpus_message(name)
    policies = load_policies([policy_path(POLICY), policy_path("mailbox-providers.toml")])
    for message_class in (MessageClass.COMMERCIAL, MessageClass.TRANSACTIONAL):
        context = make_context(raw=raw, message_class=message_class, **BASE)
        for policy in policies:
            for verdict in evaluate(policy, Stage.DATA, context).verdicts:
                assert verdict.detail
