"""The rule registry. A rule is code: an id, a stage and a pure check over a MessageContext that
returns findings (none when the message passes). Which rules run, with what action, citation
and reply, is data in policies/*.toml.

One module per rule family; importing this package registers them all. A duplicate id is an
error at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage

__all__ = ["RULES", "Check", "Fact", "Rule", "rule"]

Check = Callable[[MessageContext, Mapping[str, Any]], Iterable[Finding]]


class Fact(StrEnum):
    """A fact of the context that costs I/O to gather: gathered only when a loaded rule reads
    it (MessageContext fields of the same names)."""

    ENVELOPE_SPF = "envelope_spf"
    SENDER_DNS = "sender_dns"
    SEND_HISTORY = "send_history"
    SENDER_STANDING = "sender_standing"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    stage: Stage
    check: Check
    description: str
    params: type[BaseModel] | None  # the parameters a policy file may set, with defaults
    needs: frozenset[Fact]


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    stage: Stage,
    params: type[BaseModel] | None = None,
    needs: Iterable[Fact] = (),
) -> Callable[[Check], Check]:
    """Register `check` as rule `rule_id`; its docstring is the rule's description. A policy
    file's `params` for the rule are validated with `params` and handed to the check as a dict
    with every default filled in. `needs` names the facts the check reads."""

    def register(check: Check) -> Check:
        if rule_id in RULES:
            raise RuntimeError(f"rule id {rule_id} is defined twice")
        description = (check.__doc__ or "").strip()
        RULES[rule_id] = Rule(rule_id, stage, check, description, params, frozenset(needs))
        return check

    return register


FAMILIES = (
    "common",
    "us_canspam",
    "eu_gdpr",
    "cn_prc",
    "mailbox_providers",
    "protocol",
    "cadence",
    "send_windows",
)

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
