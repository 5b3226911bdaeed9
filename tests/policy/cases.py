"""Table-driven rule tests: a case names a rule, whether the context trips it, and the context's
overrides; `run_case` evaluates it through a shipped policy file at the rule's stage and checks
the verdict against the file's binding (action, citation, reply). `table_tests` makes the tests
every policy's table has; the rest here checks a table against its policy file and reads the
MIME corpus the rules must survive."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from relay.policy.model import Action, Stage, Verdict
from relay.policy.rules import RULES
from tests.policy.builders import (
    evaluate,
    load_policy,
    make_context,
    policy_entry,
    policy_with_params,
    verdicts_for,
)
from tests.support.paths import CORPUS

CASE_FIELDS = ("rule_id", "trips", "params", "overrides")
REFUSAL_REPLY = (550, "5.7.1")  # the catalogue's reply unless a table says otherwise

MIME_CORPUS = CORPUS / "mime" / "eml"
CORPUS_FILES = sorted(path.name for path in MIME_CORPUS.iterdir()) if MIME_CORPUS.is_dir() else []


def case(
    rule_id: str, trips: bool, name: str, *, params: Mapping[str, Any] | None = None, **context: Any
) -> Any:
    """One row: `context` are make_context overrides, `params` override the file's params."""
    return pytest.param(rule_id, trips, params, context, id=f"{rule_id}:{name}")


def run_case(
    policy_name: str,
    rule_id: str,
    trips: bool,
    params: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    tmp_path: Path,
    base: Mapping[str, Any] | None = None,
    reply: tuple[int, str] = REFUSAL_REPLY,
) -> list[Verdict]:
    """Evaluate the case; `base` holds the file's default overrides (headers are merged);
    `reply` is the catalogue's code and enhanced status for a refusing verdict."""
    if params is None:
        policy = load_policy(policy_name)
    else:
        policy = policy_with_params(tmp_path, policy_name, rule_id, params)
    fields: dict[str, Any] = {"jurisdictions": (policy.jurisdiction,), **(base or {})}
    headers = {**fields.pop("headers", {}), **overrides.get("headers", {})}
    fields.update(overrides)
    fields["headers"] = headers
    decision = evaluate(policy, RULES[rule_id].stage, make_context(**fields))
    found = verdicts_for(decision, rule_id)
    if not trips:
        assert found == [], [verdict.detail for verdict in found]
        return found
    assert len(found) == 1, decision.verdicts
    verdict = found[0]
    entry = policy_entry(policy_name, rule_id)
    assert verdict.action is Action(entry["action"])
    assert verdict.citation
    assert verdict.citation == entry["citation"]
    assert verdict.policy == policy_name
    assert verdict.inputs, "a finding must record what decided it"
    json.dumps(dict(verdict.inputs))  # the audit log stores the inputs as JSON
    if "reply" in entry:
        # A warn may carry the catalogue's reply, ready for an operator who makes it refuse.
        code, status = entry["reply"].split()[:2]
        assert verdict.reply is not None
        assert verdict.reply.code == int(code)
        assert verdict.reply.status == status
    else:
        assert not verdict.action.refuses
        assert verdict.reply is None
    if verdict.action.refuses:
        assert verdict.reply is not None
        assert (verdict.reply.code, verdict.reply.status) == reply
    return found


def table_tests(
    policy_name: str,
    cases: Sequence[Any],
    *,
    base: Mapping[str, Any] | None = None,
    replies: Mapping[str, tuple[int, str]] | None = None,
    reply: tuple[int, str] = REFUSAL_REPLY,
    stages: Iterable[Stage] = tuple(Stage),
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The two tests of a policy's table, for a test module to bind as `test_rule` and
    `test_the_default_message_passes_every_rule`: every case through the policy file (`replies`
    gives a rule's refusing reply where it is not `reply`), and the default message (with
    `base`) tripping no rule at any of `stages`."""

    @pytest.mark.parametrize(CASE_FIELDS, cases)
    def test_rule(
        rule_id: str,
        trips: bool,
        params: Mapping[str, Any] | None,
        overrides: Mapping[str, Any],
        tmp_path: Path,
    ) -> None:
        rule_reply = (replies or {}).get(rule_id, reply)
        run_case(policy_name, rule_id, trips, params, overrides, tmp_path, base, rule_reply)

    @pytest.mark.parametrize("stage", list(stages))
    def test_the_default_message_passes_every_rule(stage: Stage) -> None:
        policy = load_policy(policy_name)
        context = make_context(**{"jurisdictions": (policy.jurisdiction,), **(base or {})})
        verdicts = evaluate(policy, stage, context).verdicts
        assert verdicts == (), verdicts

    return test_rule, test_the_default_message_passes_every_rule


def bound_rule_ids(policy_name: str) -> set[str]:
    """The ids of the rules the policy file binds."""
    return {binding.rule_id for binding in load_policy(policy_name).bindings}


def rule_ids(cases: Iterable[Any]) -> set[str]:
    """The ids of the rules a table has cases for."""
    return {param.values[0] for param in cases}


def outcomes(cases: Iterable[Any], rule_id: str) -> set[bool]:
    """Whether the cases of `rule_id` pass (False), trip it (True), or both."""
    return {param.values[1] for param in cases if param.values[0] == rule_id}


def check_catalogue_default(
    policy_name: str, rule_id: str, expected: tuple[str, str | None]
) -> None:
    """The policy file binds `rule_id` with the catalogue's action and reply (code and status,
    or None for no reply), and says why."""
    entry = policy_entry(policy_name, rule_id)
    action, reply = expected
    assert entry["action"] == action
    assert entry["why"]
    if reply is None:
        assert "reply" not in entry
    else:
        assert entry["reply"].startswith(reply + " ")


def corpus_message(name: str) -> bytes:
    """The corpus file `name`, with CRLF line ends as on the wire."""
    return re.sub(rb"\r?\n", b"\r\n", (MIME_CORPUS / name).read_bytes())
