"""Mailbox-provider rules through policies/mailbox-providers.toml (COMPLIANCE §7): for each
rule, messages that pass and messages that trip it, with the action, citation and reply the
policy file binds; and the MIME corpus runs through every DATA rule without raising."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from relay.dnscheck.model import Answer, Check, DomainReadiness
from relay.policy.model import Action, Stage
from relay.policy.standing import SenderStanding
from relay.stores.models import ComplaintRate, MessageClass, PauseAction, PauseChange
from tests.policy.builders import (
    HTML,
    evaluate,
    load_policy,
    make_context,
    policy_entry,
    suppression,
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

POLICY = "mailbox-providers.toml"
# No jurisdiction: the policy applies to every recipient, whatever the consent records say.
BASE = {"jurisdictions": ()}
TRANSACTIONAL = MessageClass.TRANSACTIONAL

# What the shipped policy decides for each rule (COMPLIANCE §7 defaults): action and reply.
EXPECTED = {
    "MBP-UNSUB-48H": ("reject", "550 5.7.1"),
    "MBP-ONECLICK": ("fix", "550 5.7.1"),
    "MBP-BODY-UNSUB": ("warn", None),
    "MBP-FAKE-REPLY": ("warn", None),
    "MBP-DISPLAY-NAME": ("warn", None),
    "MBP-HIDDEN-CONTENT": ("warn", None),
    "MBP-NO-FOREIGN-FROM": ("reject", "550 5.7.1"),
    "MBP-STREAM-SEPARATION": ("warn", None),
    "MBP-SPF-PASS": ("reject", "550 5.7.1"),
    "MBP-DKIM-ALIGNED": ("reject", "550 5.7.1"),
    "MBP-DMARC-RECORD": ("reject", "550 5.7.1"),
    "MBP-COMPLAINT-RATE": ("defer", "451 4.7.1"),
}

NO_LIST_HEADERS = {"List-Unsubscribe": None, "List-Unsubscribe-Post": None}
RECEIPT = "Thank you for your order #1234.\n\nTotal: $49.99\nIt ships tomorrow.\n"
RECEIPT_HEADERS = {**NO_LIST_HEADERS, "Subject": "Your order #1234"}
UNSUB_ANCHOR = '| <a href="https://shop.example/unsubscribe/t0ken">Unsubscribe</a>'
MISLEADING = '<a href="https://evil.example/x">https://shop.example/account</a>'


def html_with(fragment: str) -> str:
    return HTML.replace("</body>", f"{fragment}\n</body>")


def from_case(trips: bool, name: str, value: str, rule_id: str = "MBP-DISPLAY-NAME", **more):
    return case(rule_id, trips, name, headers={"From": value}, **more)


def dns_check(name: str, status: str, detail: str = "what DNS said") -> Check:
    answer = Answer(f"{name}.shop.example", "TXT", ("v=...",))
    return Check(name, status, detail, (answer,))


def readiness(
    *,
    dkim: str = "pass",
    old_dkim: str = "pass",
    dmarc: str = "pass",
    alignment: str = "pass",
    dkim_domain: str | None = "shop.example",
    dkim_aligned: bool | None = True,
) -> DomainReadiness:
    """What check_domain reports for shop.example: an active key s2 and a rotated-out s1."""
    keys = (dns_check("dkim:s1", old_dkim), dns_check("dkim:s2", dkim))
    if dkim_domain is None:
        keys = (dns_check("dkim", "missing", "no [[dkim.keys]] entry for shop.example"),)
    return DomainReadiness(
        domain="shop.example",
        envelope_domain="shop.example",
        checks=(*keys, dns_check("dmarc", dmarc), dns_check("alignment", alignment)),
        dkim_domain=dkim_domain,
        active_dkim=("dkim:s2",) if dkim_domain else (),
        dkim_aligned=dkim_aligned,
    )


def spf_case(trips: bool, name: str, status: str | None):
    check = None if status is None else dns_check("spf", status)
    return case("MBP-SPF-PASS", trips, name, envelope_spf=check)


def dns_case(rule_id: str, trips: bool, name: str, **found):
    return case(rule_id, trips, name, sender_dns=readiness(**found))


PAUSED = PauseChange(
    "shop",
    PauseAction.PAUSE,
    datetime(2026, 3, 1, 9, tzinfo=UTC),
    "complaint rate 0.40% over 1d (4 complaints, 1000 delivered) at or above 0.3%",
    "MBP-COMPLAINT-RATE",
    seq=7,
)
RCPT_ONLY = {"message": None, "raw": None}


def rates(complaints: int, delivered: int, window: int = 1) -> SenderStanding:
    """A sender not paused, with `complaints` of `delivered` over `window` days."""
    rate = ComplaintRate(complaints, delivered, complaints / delivered if delivered else None)
    return SenderStanding(None, ((timedelta(days=window), rate),))


def complaint_case(trips: bool, name: str, **context):
    return case("MBP-COMPLAINT-RATE", trips, name, **{**RCPT_ONLY, **context})


def subject_case(trips: bool, subject: str, **headers: str):
    return case("MBP-FAKE-REPLY", trips, repr(subject), headers={"Subject": subject, **headers})


def hidden_case(trips: bool, name: str, fragment: str):
    return case("MBP-HIDDEN-CONTENT", trips, name, html=html_with(fragment))


CASES = [
    complaint_case(False, "not gathered", sender_standing=None),
    complaint_case(False, "no complaints", sender_standing=rates(0, 5000)),
    complaint_case(True, "paused", sender_standing=SenderStanding(PAUSED)),
    complaint_case(
        True,
        "paused by the operator",
        sender_standing=SenderStanding(replace(PAUSED, source="operator", reason="spam traps")),
    ),
    complaint_case(
        False,
        "transactional mail is never paused",
        sender_standing=SenderStanding(PAUSED),
        message_class=TRANSACTIONAL,
    ),
    complaint_case(
        False,
        "a mixed stream decides at end of data",
        sender_standing=SenderStanding(PAUSED),
        message_class=MessageClass.MIXED,
    ),
    case(
        "MBP-COMPLAINT-RATE",
        True,
        "a mixed stream's commercial message at end of data",
        sender_standing=SenderStanding(PAUSED),
        message_class=MessageClass.MIXED,
    ),
    case("MBP-UNSUB-48H", False, "not suppressed"),
    case("MBP-UNSUB-48H", True, "suppressed", suppression=suppression()),
    case(
        "MBP-UNSUB-48H",
        True,
        "suppressed for this list",
        suppression=suppression(list_id="newsletter"),
    ),
    case(
        "MBP-UNSUB-48H",
        False,
        "transactional mail still goes",
        suppression=suppression(),
        message_class=TRANSACTIONAL,
    ),
    case("MBP-ONECLICK", False, "https and one-click post"),
    case(
        "MBP-ONECLICK",
        False,
        "transactional needs none",
        headers=NO_LIST_HEADERS,
        message_class=TRANSACTIONAL,
    ),
    case("MBP-ONECLICK", True, "no list headers", headers=NO_LIST_HEADERS),
    case(
        "MBP-ONECLICK",
        True,
        "mailto only",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>"},
    ),
    case("MBP-ONECLICK", True, "no post", headers={"List-Unsubscribe-Post": None}),
    case(
        "MBP-ONECLICK",
        True,
        "mixed mail, wrong post",
        headers={"List-Unsubscribe-Post": "One-Click"},
        message_class=MessageClass.MIXED,
    ),
    case("MBP-BODY-UNSUB", False, "link in text and html"),
    case(
        "MBP-BODY-UNSUB",
        False,
        "plain text, link on the next line",
        text="Our news.\n\nTo unsubscribe, visit:\nhttps://shop.example/u/t0ken\n",
        html=None,
    ),
    case(
        "MBP-BODY-UNSUB",
        False,
        "transactional needs none",
        text=RECEIPT,
        html=None,
        message_class=TRANSACTIONAL,
    ),
    case("MBP-BODY-UNSUB", True, "html without link", html=HTML.replace(UNSUB_ANCHOR, "")),
    case("MBP-BODY-UNSUB", True, "text without link", text="Sale!\n", html=None),
    subject_case(False, "Summer sale"),
    subject_case(False, "Renewal: 3 days left"),
    subject_case(False, "Re: your question", **{"In-Reply-To": "<q1@reader.example>"}),
    subject_case(False, "Fwd: the brochure", References="<q1@reader.example>"),
    subject_case(True, "Re: your order"),
    subject_case(True, "FWD: a deal"),
    subject_case(True, "AW: Angebot"),
    subject_case(True, "[news] Re[2]: x"),
    subject_case(True, "回复：优惠"),
    case(
        "MBP-FAKE-REPLY",
        True,
        "RFC 2047 encoded",
        headers={"Subject": "=?utf-8?b?UmU6IHlvdXIgb3JkZXI=?="},
    ),
    from_case(False, "plain name", "Shop Example <news@shop.example>"),
    from_case(False, "own domain", "Shop.Example News <news@shop.example>"),
    from_case(False, "parenthesised word", '"Shop Example (News)" <news@shop.example>'),
    from_case(True, "another address", '"security@bank.example" <news@shop.example>'),
    from_case(True, "gmail.com", '"Shop at gmail.com" <news@shop.example>'),
    from_case(True, "urgency", "URGENT Shop Example <news@shop.example>"),
    from_case(True, "emoji", "Shop Example \U0001f389 <news@shop.example>"),
    from_case(True, "(2)", '"Shop Example (2)" <news@shop.example>'),
    from_case(True, "(3) as a comment", "Shop Example (3) <news@shop.example>"),
    case("MBP-HIDDEN-CONTENT", False, "plain html"),
    hidden_case(
        False,
        "hidden pixel without text",
        '<div style="display:none"><img src="https://t.shop.example/p"></div>',
    ),
    hidden_case(
        False,
        "link text of the same host",
        '<a href="https://www.shop.example/a">shop.example/a</a>',
    ),
    hidden_case(
        False,
        "link text of the parent domain",
        '<a href="https://click.shop.example/t/1">https://shop.example/a</a>',
    ),
    hidden_case(True, "display none", '<div style="display: none !important">cheap pills</div>'),
    hidden_case(True, "font-size 0", '<p>Hi<span style="font-size:0px">stuffing</span></p>'),
    hidden_case(
        True, "visibility hidden", '<table><tr><td style="visibility:hidden">x</td></tr></table>'
    ),
    hidden_case(True, "same colour", '<p style="color:#fff;background-color:#FFF">white</p>'),
    hidden_case(True, "link text shows another host", MISLEADING),
    from_case(False, "own domain", "Shop <news@shop.example>", "MBP-NO-FOREIGN-FROM"),
    from_case(
        False,
        "transactional from gmail",
        "Ann <ann@gmail.com>",
        "MBP-NO-FOREIGN-FROM",
        message_class=TRANSACTIONAL,
    ),
    from_case(True, "gmail.com", "Shop <s@gmail.com>", "MBP-NO-FOREIGN-FROM"),
    from_case(True, "HOTMAIL.COM", "Shop <shop@HOTMAIL.COM>", "MBP-NO-FOREIGN-FROM"),
    case(
        "MBP-NO-FOREIGN-FROM",
        True,
        "a listed domain",
        params={"domains": ["mail.example.org"]},
        headers={"From": "Shop <s@mail.example.org>"},
    ),
    spf_case(False, "not checked (null reverse path, no DNS)", None),
    spf_case(False, "egress authorised", "pass"),
    spf_case(False, "cannot judge (macros, no egress configured)", "unknown"),
    spf_case(True, "egress not authorised", "fail"),
    spf_case(True, "no SPF record", "missing"),
    case("MBP-DKIM-ALIGNED", False, "not checked", sender_dns=None),
    dns_case("MBP-DKIM-ALIGNED", False, "key published and aligned"),
    dns_case(
        "MBP-DKIM-ALIGNED", False, "a rotated-out selector's record is gone", old_dkim="missing"
    ),
    dns_case("MBP-DKIM-ALIGNED", True, "no key", dkim_domain=None, dkim_aligned=False),
    dns_case("MBP-DKIM-ALIGNED", True, "record is another key", dkim="fail"),
    dns_case("MBP-DKIM-ALIGNED", True, "record not published", dkim="missing"),
    dns_case("MBP-DKIM-ALIGNED", True, "parent key, adkim=s", alignment="fail", dkim_aligned=False),
    dns_case("MBP-DMARC-RECORD", False, "record with p="),
    dns_case("MBP-DMARC-RECORD", True, "no record", dmarc="missing"),
    dns_case("MBP-DMARC-RECORD", True, "record without p=", dmarc="fail"),
    case("MBP-STREAM-SEPARATION", False, "commercial mail may advertise"),
    case(
        "MBP-STREAM-SEPARATION",
        False,
        "a receipt shows a price",
        headers=RECEIPT_HEADERS,
        text=RECEIPT,
        html=None,
        message_class=TRANSACTIONAL,
    ),
    case(
        "MBP-STREAM-SEPARATION",
        True,
        "transactional sale",
        message_class=TRANSACTIONAL,
    ),
    case(
        "MBP-STREAM-SEPARATION",
        True,
        "receipt with buy now",
        headers=RECEIPT_HEADERS,
        text=RECEIPT + "Buy now: our new range.\n",
        html=None,
        message_class=TRANSACTIONAL,
    ),
    case(
        "MBP-STREAM-SEPARATION",
        True,
        "yuan and sale",
        headers={**NO_LIST_HEADERS, "Subject": "订单"},
        text="限时 sale：仅需 99元\n",
        html=None,
        message_class=TRANSACTIONAL,
    ),
    case(
        "MBP-STREAM-SEPARATION",
        True,
        "an operator's marker",
        params={"extra_markers": ["flash deal"]},
        headers=RECEIPT_HEADERS,
        text=RECEIPT + "Flash deal inside.\n",
        html=None,
        message_class=TRANSACTIONAL,
    ),
    case(
        "MBP-STREAM-SEPARATION",
        False,
        "not a marker by default",
        headers=RECEIPT_HEADERS,
        text=RECEIPT + "Flash deal inside.\n",
        html=None,
        message_class=TRANSACTIONAL,
    ),
]


test_rule, test_the_default_message_passes_every_rule = table_tests(
    POLICY, CASES, base=BASE, replies={"MBP-COMPLAINT-RATE": (451, "4.7.1")}
)


def complaint_verdicts(standing: SenderStanding):
    context = make_context(jurisdictions=(), sender_standing=standing, **RCPT_ONLY)
    decision = evaluate(load_policy(POLICY), Stage.RCPT, context)
    return verdicts_for(decision, "MBP-COMPLAINT-RATE")


def test_a_pause_reply_names_the_rule_and_the_reason():
    (verdict,) = complaint_verdicts(SenderStanding(PAUSED))
    assert verdict.reply is not None
    assert str(verdict.reply).startswith("451 4.7.1 ")
    assert "MBP-COMPLAINT-RATE" in verdict.reply.text
    assert PAUSED.reason in verdict.reply.text
    assert verdict.inputs["source"] == "MBP-COMPLAINT-RATE"


@pytest.mark.parametrize(
    ("complaints", "delivered", "warns"),
    [
        (1, 1000, True),  # 0.1 %: Gmail's target is passed
        (1, 1001, False),
        (5, 1000, True),  # past the pause threshold too: the checkpoint pauses, the rule warns
        (1, 3, False),  # one complaint on three messages is no figure (min_delivered)
        (2, 999, False),
    ],
)
def test_a_high_rate_warns_once_enough_mail_was_delivered(complaints, delivered, warns):
    verdicts = complaint_verdicts(rates(complaints, delivered))
    assert [verdict.action for verdict in verdicts] == ([Action.WARN] if warns else [])
    if warns:
        assert verdicts[0].reply is None
        assert verdicts[0].inputs["rates"] == [
            {"window": "1d", "complaints": complaints, "delivered": delivered}
        ]


def test_every_bound_rule_has_passing_and_tripping_cases():
    assert bound_rule_ids(POLICY) == set(EXPECTED)
    for rule_id in EXPECTED:
        assert outcomes(CASES, rule_id) == {True, False}, rule_id


@pytest.mark.parametrize(("rule_id", "expected"), EXPECTED.items())
def test_policy_binds_the_catalogue_defaults(rule_id, expected):
    check_catalogue_default(POLICY, rule_id, expected)


def test_a_refusal_carries_the_policy_reply():
    context = make_context(headers={"From": "Shop <s@gmail.com>"}, **BASE)
    refusal = evaluate(load_policy(POLICY), Stage.DATA, context).refusal
    assert refusal is not None
    assert refusal.rule_id == "MBP-NO-FOREIGN-FROM"
    assert str(refusal.reply) == policy_entry(POLICY, "MBP-NO-FOREIGN-FROM")["reply"]


def test_findings_name_their_inputs():
    context = make_context(html=html_with(MISLEADING), **BASE)
    (verdict,) = verdicts_for(
        evaluate(load_policy(POLICY), Stage.DATA, context), "MBP-HIDDEN-CONTENT"
    )
    assert verdict.inputs["links"] == [
        {"text": "https://shop.example/account", "href": "https://evil.example/x"}
    ]
    context = make_context(message_class=TRANSACTIONAL, **BASE)
    decision = evaluate(load_policy(POLICY), Stage.DATA, context)
    (verdict,) = verdicts_for(decision, "MBP-STREAM-SEPARATION")
    assert {"unsubscribe link", "percent off", "sale"} <= set(verdict.inputs["markers"])


def test_corpus_is_present():
    assert len(CORPUS_FILES) > 50, f"no MIME corpus at {MIME_CORPUS}"


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_runs_through_every_data_rule(name):
    """Findings or none, never an exception, whatever the MIME."""
    raw = corpus_message(name)
    policy = load_policy(POLICY)
    for message_class in (MessageClass.COMMERCIAL, TRANSACTIONAL):
        context = make_context(raw=raw, message_class=message_class, **BASE)
        for verdict in evaluate(policy, Stage.DATA, context).verdicts:
            assert verdict.detail


@pytest.mark.parametrize(
    ("rule_id", "found"),
    [
        ("MBP-SPF-PASS", {"envelope_spf": dns_check("spf", "temperror")}),
        ("MBP-DKIM-ALIGNED", {"sender_dns": readiness(dkim="temperror")}),
        (
            "MBP-DKIM-ALIGNED",
            {"sender_dns": readiness(alignment="temperror", dkim_aligned=None)},
        ),
        ("MBP-DMARC-RECORD", {"sender_dns": readiness(dmarc="temperror")}),
    ],
)
def test_a_temporary_dns_failure_defers_with_451_4_4_3(rule_id, found):
    policy = load_policy(POLICY)
    context = make_context(jurisdictions=(), **found)
    (verdict,) = verdicts_for(evaluate(policy, Stage(RULE_STAGES[rule_id]), context), rule_id)
    assert verdict.action is Action.DEFER
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.status) == (451, "4.4.3")
    assert rule_id in verdict.reply.text
    assert verdict.inputs["status"] == "temperror"


RULE_STAGES = {"MBP-SPF-PASS": "rcpt", "MBP-DKIM-ALIGNED": "data", "MBP-DMARC-RECORD": "data"}


def test_a_missing_dmarc_record_only_warns_for_transactional_mail():
    policy = load_policy(POLICY)
    context = make_context(
        jurisdictions=(), message_class=TRANSACTIONAL, sender_dns=readiness(dmarc="missing")
    )
    (verdict,) = verdicts_for(evaluate(policy, Stage.DATA, context), "MBP-DMARC-RECORD")
    assert verdict.action is Action.WARN
    assert "no usable DMARC record for shop.example" in verdict.detail


def test_dns_findings_record_the_answers_behind_them():
    policy = load_policy(POLICY)
    context = make_context(jurisdictions=(), sender_dns=readiness(dkim="fail"))
    (verdict,) = verdicts_for(evaluate(policy, Stage.DATA, context), "MBP-DKIM-ALIGNED")
    assert verdict.inputs["check"] == "dkim:s2"
    assert verdict.inputs["answers"] == [
        {"name": "dkim:s2.shop.example", "type": "TXT", "records": ["v=..."], "error": None}
    ]
