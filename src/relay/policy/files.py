"""Policy files (policies/*.toml): which rules apply to whom, with what action, citation and
reply. Validated once at start-up; a problem is reported as `FILE:key: problem`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from relay.config.loader import read_toml
from relay.errors import ConfigError
from relay.policy.model import Action
from relay.policy.rules import RULES
from relay.replies import Reply

__all__ = ["DEFAULT_POLICY_DIR", "Binding", "Policy", "load_policies", "policy_paths"]

DEFAULT_POLICY_DIR = Path(__file__).resolve().parents[3] / "policies"

_REPLY = re.compile(r"^([245])(\d\d) ([245])\.(\d{1,3})\.(\d{1,3}) (\S.*)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Match(_Model):
    tlds: list[Annotated[str, StringConstraints(to_lower=True, pattern=r"^[a-z0-9-]+$")]] = []
    domains: list[Annotated[str, StringConstraints(to_lower=True, min_length=3)]] = []


class _RuleEntry(_Model):
    action: Action
    citation: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3)]
    reply: str | None = None
    why: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class _PolicyFile(_Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    jurisdiction: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    description: str = ""
    match: _Match = Field(default_factory=_Match)
    rules: dict[str, _RuleEntry]


@dataclass(frozen=True, slots=True)
class Binding:
    rule_id: str
    action: Action
    citation: str
    reply: Reply | None
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Policy:
    path: Path
    name: str
    jurisdiction: str | None  # None: applies to every recipient
    tlds: frozenset[str]
    domains: frozenset[str]
    bindings: tuple[Binding, ...]


def _parse_reply(text: str, action: Action) -> Reply:
    if action is Action.HOLD:
        raise ValueError("a hold accepts the message (250 after DATA): it takes no reply")
    match = _REPLY.match(text)
    if not match or match.group(1) != match.group(3):
        raise ValueError(
            f"{text!r} is not an SMTP reply with an enhanced code, e.g. '550 5.7.1 text'"
        )
    wanted = {Action.DEFER: "4", Action.WARN: "45"}.get(action, "5")
    if match.group(1) not in wanted:
        raise ValueError(f"a {action.value} needs a {wanted[0]}xx reply, not {text[:3]}")
    code = int(match.group(1) + match.group(2))
    status = f"{match.group(3)}.{match.group(4)}.{match.group(5)}"
    return Reply(code, status, match.group(6))


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _load_one(path: Path) -> Policy:
    data = read_toml(path, "policy file")
    try:
        model = _PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [f"{path}:{_location(tuple(error['loc']))}: {error['msg']}" for error in exc.errors()]
        ) from None
    problems: list[str] = []
    bindings: list[Binding] = []
    for rule_id, entry in model.rules.items():
        key = f"{path}:rules.{rule_id}"
        registered = RULES.get(rule_id)
        if registered is None:
            problems.append(
                f"{key}: no rule with this id (relay policy list shows the rules in use)"
            )
            continue
        reply = None
        if entry.action.refuses and entry.reply is None:
            problems.append(f"{key}.reply: required for action {entry.action.value}")
            continue
        if entry.reply is not None:
            try:
                reply = _parse_reply(entry.reply, entry.action)
            except ValueError as exc:
                problems.append(f"{key}.reply: {exc}")
                continue
        params: dict[str, Any] = dict(entry.params)
        if registered.params is not None:
            try:
                params = registered.params.model_validate(entry.params).model_dump()
            except ValidationError as exc:
                problems.extend(
                    f"{key}.params.{_location(tuple(error['loc']))}: {error['msg']}"
                    for error in exc.errors()
                )
                continue
        elif params:
            problems.append(f"{key}.params: rule {rule_id} takes no parameters")
            continue
        bindings.append(
            Binding(rule_id, entry.action, entry.citation, reply, MappingProxyType(params))
        )
    if problems:
        raise ConfigError(problems)
    return Policy(
        path=path,
        name=model.name,
        jurisdiction=model.jurisdiction,
        tlds=frozenset(model.match.tlds),
        domains=frozenset(model.match.domains),
        bindings=tuple(bindings),
    )


def load_policies(paths: list[Path]) -> tuple[Policy, ...]:
    """Load and validate every file; report the problems of all files together."""
    problems: list[str] = []
    policies: list[Policy] = []
    for path in paths:
        try:
            policies.append(_load_one(path))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return tuple(policies)


def policy_paths(configured: list[Path] | None) -> list[Path]:
    """The configured files, or every policy shipped in DEFAULT_POLICY_DIR."""
    if configured is not None:
        return configured
    return sorted(DEFAULT_POLICY_DIR.glob("*.toml"))
