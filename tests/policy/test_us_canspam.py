"""CAN-SPAM rules through policies/us-canspam.toml (COMPLIANCE §2)."""

from __future__ import annotations

from relay.policy.model import Stage
from relay.stores.models import ConsentBasis, MessageClass
from tests.policy.builders import (
    HTML,
    TEXT,
    consent,
    evaluate,
    load_policy,
    make_context,
    suppression,
)
from tests.policy.cases import bound_rule_ids, case, rule_ids, table_tests

POLICY = "us-canspam.toml"
SOFT = (consent(basis=ConsentBasis.SOFT_OPTIN_CUSTOMER, product_category="shoes"),)
NO_UNSUB_TEXT = "Our summer sale starts today.\n1 Market Street, Springfield, IL 62701\n"
NO_UNSUB_HTML = "<p>Our summer sale starts today.</p><p>1 Market Street, Springfield, IL 62701</p>"


def adult_case(trips: bool, name: str, subject: str):
    """A case of a campaign the sender declared sexually oriented, sent with `subject`."""
    return case(
        "US-ADULT-LABEL",
        trips,
        name,
        params={"adult_campaigns": ["late-night"]},
        list_id="late-night",
        headers={"Subject": subject},
    )


CASES = [
    case("US-HDR-ACCURATE", False, "verified From"),
    case(
        "US-HDR-ACCURATE",
        False,
        "transactional with verified From and Reply-To",
        message_class=MessageClass.TRANSACTIONAL,
        headers={"Reply-To": "help@shop.example"},
    ),
    case("US-HDR-ACCURATE", True, "foreign From", headers={"From": "Shop <news@sh0p.example>"}),
    case(
        "US-HDR-ACCURATE",
        True,
        "transactional mail is covered too",
        message_class=MessageClass.TRANSACTIONAL,
        headers={"From": "orders@elsewhere.example"},
    ),
    case("US-HDR-ACCURATE", True, "foreign Reply-To", headers={"Reply-To": "x@elsewhere.example"}),
    case("US-HDR-ACCURATE", True, "no From", headers={"From": None}),
    case("US-HDR-ACCURATE", True, "no sender profile", sender=None),
    case("US-NO-UNAUTH-RELAY", False, "authenticated"),
    case(
        "US-NO-UNAUTH-RELAY", False, "trusted network", authenticated_as=None, trusted_client=True
    ),
    case("US-NO-UNAUTH-RELAY", True, "neither", authenticated_as=None, trusted_client=False),
    case("US-SUBJ-DECEPTIVE", False, "plain subject"),
    case(
        "US-SUBJ-DECEPTIVE",
        False,
        "real reply",
        headers={"Subject": "Re: your order", "In-Reply-To": "<q1@reader.example>"},
    ),
    case(
        "US-SUBJ-DECEPTIVE",
        False,
        "transactional",
        message_class=MessageClass.TRANSACTIONAL,
        headers={"Subject": "Re: your order"},
    ),
    case("US-SUBJ-DECEPTIVE", True, "fake Re:", headers={"Subject": "Re: your order"}),
    case("US-SUBJ-DECEPTIVE", True, "fake Fwd:", headers={"Subject": "FWD: 50% off"}),
    case("US-OPTOUT-PRESENT", False, "headers and both parts"),
    case(
        "US-OPTOUT-PRESENT",
        False,
        "mailto only",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>"},
    ),
    case(
        "US-OPTOUT-PRESENT",
        False,
        "transactional needs none",
        message_class=MessageClass.TRANSACTIONAL,
        headers={"List-Unsubscribe": None},
        text="Your order shipped.",
        html=None,
    ),
    case("US-OPTOUT-PRESENT", True, "no List-Unsubscribe", headers={"List-Unsubscribe": None}),
    case(
        "US-OPTOUT-PRESENT",
        True,
        "http only",
        headers={"List-Unsubscribe": "<http://shop.example/u>"},
    ),
    case("US-OPTOUT-PRESENT", True, "HTML part without notice", html=NO_UNSUB_HTML),
    case("US-OPTOUT-PRESENT", True, "text part without notice", text=NO_UNSUB_TEXT),
    case(
        "US-OPTOUT-PRESENT",
        True,
        "notice only in an image",
        text=None,
        html='<img src="cid:footer" alt="Unsubscribe">',
    ),
    case("US-OPTOUT-NO-FEE", False, "one-click and mailto"),
    case(
        "US-OPTOUT-NO-FEE",
        False,
        "mailto only",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>"},
    ),
    case(
        "US-OPTOUT-NO-FEE",
        True,
        "landing page only",
        headers={"List-Unsubscribe": "<https://shop.example/prefs>", "List-Unsubscribe-Post": None},
    ),
    case("US-AD-IDENTIFY", False, "express opt-in needs no marker"),
    case(
        "US-AD-IDENTIFY",
        False,
        "request needs no marker",
        consents=(consent(basis=ConsentBasis.REQUEST),),
    ),
    case(
        "US-AD-IDENTIFY",
        False,
        "soft opt-in with Ad: subject",
        consents=SOFT,
        headers={"Subject": "Ad: sale"},
    ),
    case(
        "US-AD-IDENTIFY",
        False,
        "soft opt-in with body disclosure",
        consents=SOFT,
        text=TEXT + "\nThis e-mail is an advertisement.\n",
    ),
    case("US-AD-IDENTIFY", True, "soft opt-in without marker", consents=SOFT),
    case(
        "US-AD-IDENTIFY",
        True,
        "no consent, marker inside a word",
        consents=(),
        headers={"Subject": "Read: news"},
    ),
    case(
        "US-AD-IDENTIFY",
        True,
        "withdrawn consent",
        consents=(consent(withdrawn_at=consent().obtained_at),),
    ),
    case("US-POSTAL-ADDRESS", False, "address in both parts"),
    case(
        "US-POSTAL-ADDRESS",
        False,
        "address wrapped and cased differently, text only",
        text="Unsubscribe: https://shop.example/u\n1 MARKET STREET\n  Springfield IL   62701\n",
        html=None,
    ),
    case(
        "US-POSTAL-ADDRESS",
        True,
        "no address",
        text=TEXT.replace("1 Market Street", "1 Main St"),
        html=None,
    ),
    case(
        "US-POSTAL-ADDRESS",
        True,
        "address only in an image",
        text=None,
        html='<p>Sale</p><img src="cid:a" alt="1 Market Street, Springfield, IL 62701">',
    ),
    case("US-POSTAL-ADDRESS", True, "no sender profile", sender=None),
    case("US-ADULT-LABEL", False, "campaign not flagged", headers={"Subject": "Hot deals"}),
    adult_case(False, "flagged with label", "SEXUALLY-EXPLICIT: Hot deals"),
    adult_case(True, "flagged without label", "Hot deals"),
    adult_case(True, "flagged, label in wrong case", "Sexually-Explicit: Hot deals"),
    adult_case(True, "flagged, label without its space", "SEXUALLY-EXPLICIT:Hot deals"),
    case("US-OPTOUT-HONOR-10BD", False, "not suppressed"),
    case(
        "US-OPTOUT-HONOR-10BD",
        False,
        "transactional to a suppressed address",
        message_class=MessageClass.TRANSACTIONAL,
        suppression=suppression(),
    ),
    case("US-OPTOUT-HONOR-10BD", True, "suppressed an hour ago", suppression=suppression()),
]

REPLIES = {"US-NO-UNAUTH-RELAY": (554, "5.7.1")}


test_rule, test_the_default_message_passes_every_rule = table_tests(POLICY, CASES, replies=REPLIES)


def test_every_bound_rule_has_cases():
    assert bound_rule_ids(POLICY) == rule_ids(CASES)


def test_rules_do_not_run_for_other_jurisdictions():
    context = make_context(jurisdictions={"EU"}, headers={"From": "x@elsewhere.example"})
    assert evaluate(load_policy(POLICY), Stage.DATA, context).verdicts == ()


def test_the_verdict_records_what_decided_it():
    context = make_context(headers={"Subject": "Fwd: deal"}, html=HTML)
    (verdict,) = evaluate(load_policy(POLICY), Stage.DATA, context).verdicts
    assert verdict.rule_id == "US-SUBJ-DECEPTIVE"
    assert verdict.inputs["subject"] == "Fwd: deal"
    assert verdict.inputs["in_reply_to"] is None
