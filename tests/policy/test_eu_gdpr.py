"""GDPR / ePrivacy rules through policies/eu-gdpr.toml (COMPLIANCE §3)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relay.policy.model import Stage
from relay.stores.models import ConsentBasis, MessageClass, SuppressionReason
from tests.policy.builders import (
    HTML,
    NOW,
    TEXT,
    consent,
    evaluate,
    load_policy,
    make_context,
    suppression,
)
from tests.policy.cases import bound_rule_ids, case, rule_ids, table_tests

POLICY = "eu-gdpr.toml"
EU = frozenset({"EU"})
SOFT = consent(
    record_id="soft-1",
    basis=ConsentBasis.SOFT_OPTIN_CUSTOMER,
    product_category="shoes",
    jurisdictions=EU,
)
PLAIN_TEXT = "Our summer sale starts today.\nShop Example Ltd\n"
PLAIN_HTML = "<p>Our summer sale starts today.</p><p>Shop Example Ltd</p>"

CASES = [
    case("EU-EPR-CONSENT", False, "express opt-in"),
    case("EU-EPR-CONSENT", False, "soft opt-in", consents=(SOFT,)),
    case(
        "EU-EPR-CONSENT",
        False,
        "transactional needs none",
        message_class=MessageClass.TRANSACTIONAL,
        consents=(),
    ),
    case("EU-EPR-CONSENT", True, "no record", consents=()),
    case(
        "EU-EPR-CONSENT",
        True,
        "pre-ticked box",
        consents=(consent(affirmative_action=False, jurisdictions=EU),),
    ),
    case("EU-EPR-CONSENT", True, "bundled", consents=(consent(bundled=True, jurisdictions=EU),)),
    case(
        "EU-EPR-CONSENT",
        True,
        "withdrawn",
        consents=(consent(withdrawn_at=NOW - timedelta(days=1), jurisdictions=EU),),
    ),
    case(
        "EU-EPR-CONSENT",
        True,
        "other list",
        list_id="newsletter",
        consents=(consent(scope=("product-news",), jurisdictions=EU),),
    ),
    case(
        "EU-EPR-CONSENT",
        True,
        "implied consent of another regime",
        consents=(consent(basis=ConsentBasis.CA_IMPLIED_EBR, jurisdictions=EU),),
    ),
    case("EU-EPR-SOFT-OPTIN", False, "express opt-in"),
    case("EU-EPR-SOFT-OPTIN", False, "soft opt-in with product category", consents=(SOFT,)),
    case(
        "EU-EPR-SOFT-OPTIN",
        False,
        "soft opt-in within the member state's limit",
        params={"max_age_days": 365},
        consents=(SOFT,),
    ),
    case(
        "EU-EPR-SOFT-OPTIN",
        True,
        "soft opt-in without the sale's product category",
        consents=(consent(basis=ConsentBasis.SOFT_OPTIN_CUSTOMER, jurisdictions=EU),),
    ),
    case(
        "EU-EPR-SOFT-OPTIN",
        True,
        "soft opt-in older than the member state allows",
        params={"max_age_days": 7},
        consents=(SOFT,),
    ),
    case("EU-CONSENT-PROOF", False, "record with evidence"),
    case(
        "EU-CONSENT-PROOF",
        True,
        "legacy record without evidence",
        consents=(consent(evidence_ref="", notice_version=None, jurisdictions=EU),),
    ),
    case("EU-WITHDRAW-EASY", False, "one-click and body links"),
    case(
        "EU-WITHDRAW-EASY",
        True,
        "mailto only",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>"},
    ),
    case(
        "EU-WITHDRAW-EASY",
        True,
        "no List-Unsubscribe-Post",
        headers={"List-Unsubscribe-Post": None},
    ),
    case(
        "EU-WITHDRAW-EASY",
        True,
        "List-Unsubscribe-Post with another value",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=one-click"},
    ),
    case(
        "EU-WITHDRAW-EASY",
        True,
        "body says unsubscribe but gives no link",
        text=PLAIN_TEXT + "Reply 'unsubscribe' to stop.\n",
        html=None,
    ),
    case("EU-OBJECTION-STOP", False, "not suppressed"),
    case(
        "EU-OBJECTION-STOP",
        True,
        "objected",
        suppression=suppression(reason=SuppressionReason.OBJECTION, source="operator"),
    ),
    case("EU-OBJECTION-NOTICE", False, "opt-out statement in the body"),
    case(
        "EU-OBJECTION-NOTICE",
        False,
        "German opt-out statement",
        text=PLAIN_TEXT + "Newsletter abbestellen: antworten Sie mit STOP.\n",
        html=None,
    ),
    case("EU-OBJECTION-NOTICE", True, "no statement", text=PLAIN_TEXT, html=PLAIN_HTML),
    case("EU-EPR-IDENTITY", False, "verified From"),
    case("EU-EPR-IDENTITY", True, "disguised From", headers={"From": "Bank <alerts@bank.example>"}),
    case("EU-EPR-IDENTITY", True, "no sender profile", sender=None),
    case("EU-EPR-IDENTITY-FOOTER", False, "legal name in the body"),
    case(
        "EU-EPR-IDENTITY-FOOTER",
        True,
        "no legal name",
        text=TEXT.replace("Shop Example Ltd", "Shop"),
        html=HTML.replace("Shop Example Ltd", "Shop"),
    ),
    case("EU-ECOM-IDENTIFIABLE", False, "solicited: express opt-in"),
    case(
        "EU-ECOM-IDENTIFIABLE",
        False,
        "soft opt-in marked Werbung",
        consents=(SOFT,),
        headers={"Subject": "Werbung: Sommerschlussverkauf"},
    ),
    case("EU-ECOM-IDENTIFIABLE", True, "soft opt-in unmarked", consents=(SOFT,)),
    case("EU-INFO-13-14", False, "privacy link"),
    case(
        "EU-INFO-13-14",
        False,
        "French privacy link text",
        text=None,
        html='<a href="https://shop.example/x">Politique de confidentialité</a> '
        '<a href="https://shop.example/u">Se désinscrire</a>',
    ),
    case(
        "EU-INFO-13-14",
        True,
        "no privacy link",
        text=TEXT.replace("https://shop.example/privacy", ""),
        html=HTML.replace('<a href="https://shop.example/privacy">Privacy notice</a>', ""),
    ),
]


test_rule, test_the_default_message_passes_every_rule = table_tests(POLICY, CASES)


def test_every_bound_rule_has_cases():
    assert bound_rule_ids(POLICY) == rule_ids(CASES)


def test_consent_verdict_lists_the_records_it_considered():
    context = make_context(jurisdictions=EU, consents=(consent(bundled=True, jurisdictions=EU),))
    (verdict,) = evaluate(load_policy(POLICY), Stage.RCPT, context).verdicts
    assert verdict.rule_id == "EU-EPR-CONSENT"
    assert verdict.inputs["consents"] == [
        {
            "record_id": "consent-1",
            "basis": "express_optin",
            "covers": True,
            "affirmative_action": True,
            "bundled": True,
        }
    ]


@pytest.mark.parametrize(
    ("recipient", "inferred"),
    [("leser@example.de", {"EU"}), ("x@example.eu", {"EU"}), ("x@example.com", set())],
)
def test_match_places_member_state_domains_in_the_eu(recipient, inferred):
    engine_policy = load_policy(POLICY)
    from relay.policy.engine import PolicyEngine

    assert PolicyEngine([engine_policy]).jurisdictions(recipient, (), None) == inferred
