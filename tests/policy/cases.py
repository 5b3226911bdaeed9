"""Table-driven rule tests: a case names a rule, whether the context trips it, and the context's
overrides; `run_case` evaluates it through a shipped policy file at the rule's stage and checks
the verdict against the file's binding (action, citation, reply)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from relay.policy.model import Action, Verdict
from relay.policy.rules import RULES
from tests.policy.builders import (
    evaluate,
    load_policy,
    make_context,
    policy_entry,
    policy_with_params,
    verdicts_for,
)


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
    reply: tuple[int, str] = (550, "5.7.1"),
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
