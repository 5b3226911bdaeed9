"""The jurisdiction policy files load, bind only known rules, and a bad policy file is reported
as `FILE:rules.ID.key: problem`; content rules survive malformed mail."""

from __future__ import annotations

import json
import tomllib

import pytest

from relay.errors import ConfigError
from relay.policy.engine import PolicyEngine
from relay.policy.files import load_policies
from relay.policy.model import Stage
from relay.policy.rules import RULES
from relay.stores.models import ConsentBasis
from tests.policy.builders import consent, make_context, policy_path
from tests.support.paths import CORPUS

FILES = ["us-canspam.toml", "eu-gdpr.toml", "cn-prc.toml"]
SUPPRESSION = {
    "us-canspam.toml": "US-OPTOUT-HONOR-10BD",
    "eu-gdpr.toml": "EU-OBJECTION-STOP",
    "cn-prc.toml": "PRC-OPTOUT-STOP",
}
EML = sorted((CORPUS / "mime" / "eml").glob("*.eml"))


@pytest.mark.parametrize("name", FILES)
def test_policy_file_loads(name):
    (policy,) = load_policies([policy_path(name)])
    data = tomllib.loads(policy_path(name).read_text("utf-8"))
    assert policy.name == data["name"]
    assert policy.jurisdiction == data["jurisdiction"]
    assert len(policy.bindings) == len(data["rules"])
    for rule_id, entry in data["rules"].items():
        assert rule_id in RULES
        assert entry["citation"].strip()
        assert entry["why"].strip()
        assert entry["action"] == "warn" or entry["reply"].startswith("5")


@pytest.mark.parametrize("name", FILES)
def test_suppression_rule_is_bound_to_reject(name):
    (policy,) = load_policies([policy_path(name)])
    (binding,) = [b for b in policy.bindings if b.rule_id == SUPPRESSION[name]]
    assert binding.action.value == "reject"
    assert binding.reply is not None
    assert (binding.reply.code, binding.reply.status) == (550, "5.7.1")


def test_all_files_load_together():
    assert len(load_policies([policy_path(name) for name in FILES])) == 3


HEADER = 'name = "bad"\njurisdiction = "US"\n'


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            '[rules.US-NO-SUCH-RULE]\naction = "reject"\ncitation = "none"\n'
            'reply = "550 5.7.1 no"\n',
            "rules.US-NO-SUCH-RULE: no rule with this id",
        ),
        (
            '[rules.US-HDR-ACCURATE]\naction = "bounce"\ncitation = "15 U.S.C. 7704(a)(1)"\n',
            "rules.US-HDR-ACCURATE.action: Input should be",
        ),
        (
            '[rules.US-HDR-ACCURATE]\naction = "reject"\ncitation = "15 U.S.C. 7704(a)(1)"\n'
            'reply = "550 From is not yours"\n',
            "rules.US-HDR-ACCURATE.reply: '550 From is not yours' is not an SMTP reply with an "
            "enhanced code",
        ),
        (
            '[rules.US-HDR-ACCURATE]\naction = "reject"\ncitation = "15 U.S.C. 7704(a)(1)"\n',
            "rules.US-HDR-ACCURATE.reply: required for action reject",
        ),
        (
            '[rules.US-HDR-ACCURATE]\naction = "defer"\ncitation = "15 U.S.C. 7704(a)(1)"\n'
            'reply = "550 5.7.1 no"\n',
            "rules.US-HDR-ACCURATE.reply: a defer needs a 4xx reply, not 550",
        ),
        (
            '[rules.US-AD-IDENTIFY]\naction = "warn"\ncitation = "7704(a)(5)"\n'
            '[rules.US-AD-IDENTIFY.params]\nmarker = "Ad:"\n',
            "rules.US-AD-IDENTIFY.params.marker: Extra inputs are not permitted",
        ),
        (
            '[rules.US-AD-IDENTIFY]\naction = "warn"\ncitation = "7704(a)(5)"\n'
            '[rules.US-AD-IDENTIFY.params]\nmarkers = "Ad:"\n',
            "rules.US-AD-IDENTIFY.params.markers: Input should be a valid list",
        ),
        (
            '[rules.US-HDR-ACCURATE]\naction = "warn"\ncitation = "15 U.S.C. 7704(a)(1)"\n'
            "[rules.US-HDR-ACCURATE.params]\nstrict = true\n",
            "rules.US-HDR-ACCURATE.params: rule US-HDR-ACCURATE takes no parameters",
        ),
        (
            '[rules.PRC-SUBJECT-AD-PREFIX]\naction = "fix"\ncitation = "Art. 13(3)"\n'
            'reply = "550 5.7.1 prefix"\nwhy = "x"\nseverity = 3\n',
            "rules.PRC-SUBJECT-AD-PREFIX.severity: Extra inputs are not permitted",
        ),
    ],
    ids=[
        "unknown rule id",
        "bad action",
        "reply without enhanced code",
        "refusal without reply",
        "defer with a 5xx reply",
        "unknown param",
        "param of the wrong type",
        "params for a rule without any",
        "unknown key",
    ],
)
def test_bad_policy_file_names_file_rule_and_key(tmp_path, table, problem):
    path = tmp_path / "bad.toml"
    path.write_text(HEADER + table, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policies([path])
    assert caught.value.problems == [caught.value.problems[0]]
    assert caught.value.problems[0].startswith(f"{path}:{problem}")


def test_problems_of_several_files_are_reported_together(tmp_path):
    first, second = tmp_path / "one.toml", tmp_path / "two.toml"
    first.write_text(HEADER + '[rules.NOPE]\naction = "warn"\ncitation = "abc"\n', "utf-8")
    second.write_text(HEADER + '[rules.NADA]\naction = "warn"\ncitation = "abc"\n', "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policies([first, second, policy_path("cn-prc.toml")])
    assert [problem.split(": ")[0] for problem in caught.value.problems] == [
        f"{first}:rules.NOPE",
        f"{second}:rules.NADA",
    ]


def test_corpus_is_present():
    assert len(EML) > 50


@pytest.mark.parametrize("path", EML, ids=[path.name for path in EML])
def test_data_rules_survive_malformed_mail(path):
    policies = load_policies([policy_path(name) for name in FILES])
    engine = PolicyEngine(policies)
    raw = path.read_bytes()
    everywhere = frozenset({"US", "EU", "CN"})
    for overrides in (
        {},
        {"consents": (), "sender": None},
        {"consents": (consent(basis=ConsentBasis.SOFT_OPTIN_CUSTOMER),), "list_id": None},
    ):
        context = make_context(raw=raw, jurisdictions=everywhere, **overrides)
        decision = engine.evaluate(Stage.DATA, context)
        for verdict in decision.verdicts:
            assert isinstance(verdict.detail, str)
            json.dumps(dict(verdict.inputs))  # the audit log stores what decided it as JSON
        # Also the rules that only run for flagged campaigns, flagged for this one.
        flagged = {
            "adult_campaigns": [context.list_id],
            "personalised_campaigns": [context.list_id],
        }
        for policy in policies:
            for binding in policy.bindings:
                if RULES[binding.rule_id].stage is Stage.DATA:
                    params = {**binding.params}
                    params.update({k: v for k, v in flagged.items() if k in params})
                    list(RULES[binding.rule_id].check(context, params))
