"""PRC rules through policies/cn-prc.toml (COMPLIANCE §4.2)."""

from __future__ import annotations

import pytest

from relay.policy.engine import PolicyEngine
from relay.policy.model import Stage
from relay.stores.models import ConsentBasis, MessageClass, SuppressionReason
from tests.policy.builders import (
    HTML,
    TEXT,
    consent,
    evaluate,
    load_policy,
    make_context,
    message,
    suppression,
)
from tests.policy.cases import bound_rule_ids, case, rule_ids, table_tests

POLICY = "cn-prc.toml"
CN = frozenset({"CN"})
BASE = {"jurisdictions": CN, "headers": {"Subject": "【广告】夏季促销"}}
PERSONALISED = {"personalised_campaigns": ["for-you"]}
NO_ONE_CLICK = {
    "List-Unsubscribe": "<mailto:unsubscribe@shop.example>",
    "List-Unsubscribe-Post": None,
}


def subject_case(trips: bool, subject: str):
    return case("PRC-SUBJECT-AD-PREFIX", trips, repr(subject), headers={"Subject": subject})


CASES = [
    case("PRC-CONSENT-EXPLICIT", False, "express opt-in tagged CN"),
    case(
        "PRC-CONSENT-EXPLICIT",
        False,
        "request",
        consents=(consent(basis=ConsentBasis.REQUEST, jurisdictions=CN),),
    ),
    case(
        "PRC-CONSENT-EXPLICIT",
        False,
        "transactional needs none",
        message_class=MessageClass.TRANSACTIONAL,
        consents=(),
    ),
    case("PRC-CONSENT-EXPLICIT", True, "no record", consents=()),
    case(
        "PRC-CONSENT-EXPLICIT",
        True,
        "soft opt-in is not explicit",
        consents=(
            consent(
                basis=ConsentBasis.SOFT_OPTIN_CUSTOMER, product_category="shoes", jurisdictions=CN
            ),
        ),
    ),
    case(
        "PRC-CONSENT-EXPLICIT",
        True,
        "opt-in not tagged CN",
        consents=(consent(jurisdictions=frozenset({"US"})),),
    ),
    subject_case(False, "【广告】夏季促销"),
    subject_case(False, "广告：夏季促销"),
    subject_case(False, "AD: summer sale"),
    subject_case(False, "[AD] summer sale"),
    subject_case(False, "  （广告）夏季促销"),
    subject_case(False, "「AD」summer sale"),
    subject_case(False, "AD夏季促销"),
    subject_case(True, "夏季促销"),
    subject_case(True, "Summer sale 【广告】"),
    subject_case(True, "[[AD]] summer sale"),
    subject_case(True, "Ad: summer sale"),
    subject_case(True, "[ad] summer sale"),
    subject_case(True, "ADVENTURE trips"),
    case(
        "PRC-SUBJECT-AD-PREFIX",
        False,
        "transactional",
        message_class=MessageClass.TRANSACTIONAL,
        headers={"Subject": "订单已发货"},
    ),
    case("PRC-OPTOUT-STOP", False, "not suppressed"),
    case(
        "PRC-OPTOUT-STOP",
        True,
        "refused",
        suppression=suppression(reason=SuppressionReason.UNSUBSCRIBE_MAILTO, source="mailto"),
    ),
    case("PRC-OPTOUT-CONTACT", False, "mailto and one-click in the headers"),
    case(
        "PRC-OPTOUT-CONTACT",
        False,
        "one-click header, refusal address in the body",
        headers={"List-Unsubscribe": "<https://shop.example/u/1>"},
        text=TEXT + "退订请发邮件至 unsubscribe@shop.example\n",
        html=None,
    ),
    case(
        "PRC-OPTOUT-CONTACT",
        True,
        "no refusal address",
        headers={"List-Unsubscribe": "<https://shop.example/u/1>"},
    ),
    case("PRC-OPTOUT-CONTACT", True, "no one-click", headers=NO_ONE_CLICK),
    case(
        "PRC-OPTOUT-CONTACT",
        False,
        "HTML mailto link to opt out",
        headers={"List-Unsubscribe": "<https://shop.example/u/1>"},
        text=None,
        html='<a href="mailto:stop@shop.example">退订</a>',
    ),
    case("PRC-ADLAW-IDENTITY", False, "legal name and contact in the body"),
    case(
        "PRC-ADLAW-IDENTITY",
        True,
        "no contact",
        text=TEXT.replace("service@shop.example", "us"),
        html=HTML.replace("service@shop.example", "us"),
    ),
    case("PRC-ADLAW-IDENTITY", True, "no sender profile", sender=None),
    case("PRC-ENVELOPE-NO-FORGE", False, "VERP under the verified domain"),
    case("PRC-ENVELOPE-NO-FORGE", False, "bounce subdomain", mail_from="b+1@bounce.shop.example"),
    case("PRC-ENVELOPE-NO-FORGE", True, "third-party domain", mail_from="bounce@esp.example"),
    case("PRC-ENVELOPE-NO-FORGE", True, "look-alike domain", mail_from="b@evilshop.example"),
    case("PRC-ENVELOPE-NO-FORGE", True, "null reverse-path", mail_from=""),
    case("PRC-ENVELOPE-NO-FORGE", True, "no sender profile", sender=None),
    case("PRC-PIPL-AUTOMATED-MKT", False, "campaign not personalised", headers=NO_ONE_CLICK),
    case(
        "PRC-PIPL-AUTOMATED-MKT",
        False,
        "personalised with one-click",
        params=PERSONALISED,
        list_id="for-you",
    ),
    case(
        "PRC-PIPL-AUTOMATED-MKT",
        True,
        "personalised without one-click",
        params=PERSONALISED,
        list_id="for-you",
        headers=NO_ONE_CLICK,
    ),
]


test_rule, test_the_default_message_passes_every_rule = table_tests(POLICY, CASES, base=BASE)


def test_every_bound_rule_has_cases():
    assert bound_rule_ids(POLICY) == rule_ids(CASES)


def test_subject_is_read_rfc2047_decoded():
    raw = message({"Subject": "【广告】夏季促销"})
    assert b"=?utf-8?" in raw
    assert b"\xe3" not in raw.split(b"\r\n\r\n")[0]  # the header went out encoded
    context = make_context(raw=raw, jurisdictions=CN)
    assert evaluate(load_policy(POLICY), Stage.DATA, context).verdicts == ()


def test_lower_case_ad_is_reported_as_a_case_mismatch():
    context = make_context(jurisdictions=CN, headers={"Subject": "Ad: sale"})
    (verdict,) = evaluate(load_policy(POLICY), Stage.DATA, context).verdicts
    assert verdict.inputs["case_mismatch"] == "Ad"
    assert verdict.inputs["subject"] == "Ad: sale"
    assert verdict.inputs["fix_prefix"] == "【广告】"


@pytest.mark.parametrize(
    ("recipient", "inferred"),
    [
        ("user@qq.com", {"CN"}),
        ("user@FoxMail.com", {"CN"}),
        ("user@mail.example.cn", {"CN"}),
        ("user@example.com", set()),
        ("user@qq.com.example", set()),
    ],
)
def test_match_places_prc_providers_and_cn_in_the_prc(recipient, inferred):
    assert PolicyEngine([load_policy(POLICY)]).jurisdictions(recipient, (), None) == inferred
