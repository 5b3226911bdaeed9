"""Which fixes a message gets: from the rules whose verdict is `fix`, the sender's choices and
whether the relay can sign the result.

- A rewrite breaks the mailer's DKIM signature, so without an aligned key for the From domain
  no fix is made and every rule that needed one refuses (COMPLIANCE §11 point 10).
- CAN-SPAM's "routine conveyance" protects a relay that does not alter content: fixes ordered by
  a US rule are made only for senders who opted in; fixes ordered by other rules are made unless
  the sender opted out (COMPLIANCE §11 point 11).
- A fix ordered by a rule the sender does not let the relay fix leaves that rule refusing.

`FIXES` says which fixes satisfy each rule; `ORDER` is the order to apply them in (headers
first, the footer before long lines, so a footer added to a part with long lines is re-encoded
with it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = ["FIXES", "OPT_IN_JURISDICTIONS", "ORDER", "Fix", "FixPlan", "FixPreferences", "plan"]


class Fix(StrEnum):
    REQUIRED_HEADERS = "required_headers"  # relay.rewrite.required_headers
    UNSUBSCRIBE = "unsubscribe"  # relay.rewrite.unsubscribe
    SUBJECT_PREFIX = "subject_prefix"  # relay.rewrite.subject_prefix
    FOOTER = "footer"  # relay.rewrite.footer
    LONG_LINES = "long_lines"  # relay.rewrite.long_lines


ORDER = (Fix.REQUIRED_HEADERS, Fix.UNSUBSCRIBE, Fix.SUBJECT_PREFIX, Fix.FOOTER, Fix.LONG_LINES)

FIXES: Mapping[str, tuple[Fix, ...]] = MappingProxyType(
    {
        # RFC-5322-REQUIRED and RFC-5322-LINELEN: only their findings with remedy "fix".
        "RFC-5322-REQUIRED": (Fix.REQUIRED_HEADERS,),
        "RFC-5322-LINELEN": (Fix.LONG_LINES,),
        "RFC-LU-SYNTAX": (Fix.UNSUBSCRIBE,),
        "RFC-LUP-EXACT": (Fix.UNSUBSCRIBE,),
        "MBP-ONECLICK": (Fix.UNSUBSCRIBE,),
        "PRC-OPTOUT-CONTACT": (Fix.UNSUBSCRIBE,),
        "EU-WITHDRAW-EASY": (Fix.UNSUBSCRIBE, Fix.FOOTER),
        "US-OPTOUT-PRESENT": (Fix.UNSUBSCRIBE, Fix.FOOTER),
        "PRC-SUBJECT-AD-PREFIX": (Fix.SUBJECT_PREFIX,),
        "US-POSTAL-ADDRESS": (Fix.FOOTER,),
        "EU-EPR-IDENTITY-FOOTER": (Fix.FOOTER,),
        "PRC-ADLAW-IDENTITY": (Fix.FOOTER,),
        "MBP-BODY-UNSUB": (Fix.FOOTER,),
    }
)

OPT_IN_JURISDICTIONS = frozenset({"US"})


@dataclass(frozen=True, slots=True)
class FixPreferences:
    """A sender's choices: fixes it allows where they are opt-in, fixes it refuses anywhere."""

    opted_in: frozenset[Fix] = frozenset()
    opted_out: frozenset[Fix] = frozenset()

    def allows(self, fix: Fix, jurisdiction: str | None) -> bool:
        if fix in self.opted_out:
            return False
        return jurisdiction not in OPT_IN_JURISDICTIONS or fix in self.opted_in


@dataclass(frozen=True, slots=True)
class FixPlan:
    fixes: tuple[Fix, ...]  # to apply, in ORDER
    refused: tuple[str, ...]  # rule ids whose fix cannot be made: they refuse the message


def plan(
    needed: Iterable[tuple[str, str | None]],
    preferences: FixPreferences,
    *,
    aligned_key: bool,
) -> FixPlan:
    """`needed` is (rule id, jurisdiction of the policy that bound it) of every `fix` verdict."""
    chosen: set[Fix] = set()
    refused: list[str] = []
    for rule_id, jurisdiction in needed:
        fixes = FIXES.get(rule_id, ())
        if (
            not aligned_key
            or not fixes
            or not all(preferences.allows(fix, jurisdiction) for fix in fixes)
        ):
            refused.append(rule_id)
            continue
        chosen.update(fixes)
    return FixPlan(tuple(fix for fix in ORDER if fix in chosen), tuple(dict.fromkeys(refused)))
