"""Which fixes are made: sender choices, US opt-in, no fix without an aligned key."""

from __future__ import annotations

from relay.policy.model import Action
from relay.policy.rules import RULES
from relay.rewrite.plan import FIXES, ORDER, Fix, FixPlan, FixPreferences, plan
from tests.rewrite.messages import POLICIES


def test_every_fix_binding_of_the_shipped_policies_has_a_fix() -> None:
    bound = {b.rule_id for p in POLICIES for b in p.bindings if b.action is Action.FIX}
    assert bound <= FIXES.keys()
    assert FIXES.keys() <= RULES.keys()


def test_plan_orders_and_merges() -> None:
    needed = [("PRC-SUBJECT-AD-PREFIX", "CN"), ("MBP-ONECLICK", None), ("EU-WITHDRAW-EASY", "EU")]
    assert plan(needed, FixPreferences(), aligned_key=True) == FixPlan(
        (Fix.UNSUBSCRIBE, Fix.SUBJECT_PREFIX, Fix.FOOTER), ()
    )
    assert list(ORDER) == list(Fix)


def test_us_fixes_are_opt_in() -> None:
    needed = [("US-POSTAL-ADDRESS", "US"), ("PRC-ADLAW-IDENTITY", "CN")]
    assert plan(needed, FixPreferences(), aligned_key=True) == FixPlan(
        (Fix.FOOTER,), ("US-POSTAL-ADDRESS",)
    )
    opted_in = FixPreferences(opted_in=frozenset({Fix.FOOTER}))
    assert plan(needed, opted_in, aligned_key=True) == FixPlan((Fix.FOOTER,), ())


def test_opt_out_and_no_aligned_key_refuse() -> None:
    needed = [("MBP-ONECLICK", None), ("RFC-5322-REQUIRED", None), ("NO-SUCH-FIX", None)]
    opted_out = FixPreferences(opted_out=frozenset({Fix.UNSUBSCRIBE}))
    assert plan(needed, opted_out, aligned_key=True) == FixPlan(
        (Fix.REQUIRED_HEADERS,), ("MBP-ONECLICK", "NO-SUCH-FIX")
    )
    assert plan(needed, FixPreferences(), aligned_key=False) == FixPlan(
        (), ("MBP-ONECLICK", "RFC-5322-REQUIRED", "NO-SUCH-FIX")
    )
