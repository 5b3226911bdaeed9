"""The vocabulary of the policy stage: stages, actions, findings, verdicts, decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from relay.replies import Reply

__all__ = ["Action", "Decision", "Finding", "Stage", "Verdict"]


class Stage(StrEnum):
    RCPT = "rcpt"  # per recipient, before it is accepted
    DATA = "data"  # end of data, one reply for the whole transaction


class Action(StrEnum):
    """COMPLIANCE §0. Ordered by how strict they are: the strictest verdict decides."""

    WARN = "warn"
    # Accept, but keep the recipient in the spool until the finding's `release_at` (send-time
    # windows): it delays, it never refuses.
    HOLD = "hold"
    DEFER = "defer"
    FIX = "fix"
    REJECT = "reject"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def refuses(self) -> bool:
        # A needed fix refuses unless the rewrite stage makes it (relay.policy.checkpoint: only
        # when every refusing verdict is a fix and the plan allows them all).
        return self not in (Action.WARN, Action.HOLD)


_SEVERITY = {Action.WARN: 1, Action.HOLD: 2, Action.DEFER: 3, Action.FIX: 4, Action.REJECT: 5}

_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule is tripped: what is wrong, and the inputs that decided it (header values, record
    ids) so that an auditor can see why."""

    detail: str
    inputs: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    # DNS could not tell: a refusing binding defers (451 4.4.3) instead of refusing for good.
    temporary: bool = False
    # The rule only advises here (MBP-DMARC-RECORD for mail that is not bulk): a warning.
    advisory: bool = False
    # Added to the binding's reply: what only the finding knows (when a cadence window frees).
    reply_note: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A finding bound to the policy that decides what it means."""

    rule_id: str
    action: Action
    citation: str
    reply: Reply | None
    detail: str
    inputs: Mapping[str, object]
    policy: str  # the policy file that bound the rule


@dataclass(frozen=True, slots=True)
class Decision:
    verdicts: tuple[Verdict, ...] = ()

    @property
    def refusal(self) -> Verdict | None:
        """The strictest verdict that stops the message (or recipient), if any."""
        refusing = [verdict for verdict in self.verdicts if verdict.action.refuses]
        if not refusing:
            return None
        return max(refusing, key=lambda verdict: verdict.action.severity)

    def __add__(self, other: Decision) -> Decision:
        return Decision(self.verdicts + other.verdicts)
