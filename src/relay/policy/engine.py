"""The engine: run the rules that the applicable policies bind, turn findings into verdicts.

A policy with a jurisdiction applies to recipients of that jurisdiction; one without applies to
every recipient. When several jurisdictions apply, all their rules run and the strictest verdict
decides (COMPLIANCE §0).
"""

from __future__ import annotations

from collections.abc import Iterable

from relay import replies
from relay.policy.context import MessageContext
from relay.policy.files import Binding, Policy
from relay.policy.model import Action, Decision, Finding, Stage, Verdict
from relay.policy.rules import RULES, Fact
from relay.replies import Reply
from relay.stores.models import ConsentRecord, SenderProfile

__all__ = ["PolicyEngine"]


class PolicyEngine:
    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = tuple(policies)
        self._stage_bindings: dict[Stage, list[tuple[Policy, Binding]]] = {
            stage: [
                (policy, binding)
                for policy in self.policies
                for binding in policy.bindings
                if RULES[binding.rule_id].stage is stage
            ]
            for stage in Stage
        }

    def binds(self, rule_id: str) -> bool:
        """Some loaded policy runs the rule `rule_id`."""
        return any(
            binding.rule_id == rule_id for policy in self.policies for binding in policy.bindings
        )

    def needs(self, fact: Fact) -> bool:
        """Some loaded rule reads `fact`: the checkpoint gathers it."""
        return any(
            fact in RULES[binding.rule_id].needs
            for policy in self.policies
            for binding in policy.bindings
        )

    def jurisdictions(
        self,
        recipient: str,
        consents: Iterable[ConsentRecord],
        sender: SenderProfile | None,
    ) -> frozenset[str]:
        """From the consent records, tightened by the domain heuristics of the policy files
        (ccTLD, provider lists); the sender's default when neither says anything."""
        found: set[str] = set()
        for record in consents:
            found |= record.jurisdictions
        domain = recipient.rpartition("@")[2].lower()
        tld = domain.rpartition(".")[2]
        for policy in self.policies:
            if policy.jurisdiction and (tld in policy.tlds or domain in policy.domains):
                found.add(policy.jurisdiction)
        if not found and sender is not None and sender.default_jurisdiction:
            found.add(sender.default_jurisdiction)
        return frozenset(found)

    def evaluate(self, stage: Stage, context: MessageContext) -> Decision:
        verdicts: list[Verdict] = []
        for policy, binding in self._stage_bindings[stage]:
            if policy.jurisdiction is not None and policy.jurisdiction not in context.jurisdictions:
                continue
            for finding in RULES[binding.rule_id].check(context, binding.params):
                action, reply = _action(binding, finding)
                verdicts.append(
                    Verdict(
                        rule_id=binding.rule_id,
                        action=action,
                        citation=binding.citation,
                        reply=reply,
                        detail=finding.detail,
                        inputs=finding.inputs,
                        policy=policy.path.name,
                    )
                )
        return Decision(tuple(verdicts))


def _action(binding: Binding, finding: Finding) -> tuple[Action, Reply | None]:
    """What the binding's action means for this finding: an advisory finding only warns; a
    temporary one (DNS could not tell) defers instead of refusing for good."""
    if finding.advisory:
        return Action.WARN, None
    if finding.temporary and binding.action.refuses:
        return Action.DEFER, replies.DNS_TEMPORARY.but(
            f"DNS lookup failed temporarily while checking {binding.rule_id}, try again later"
        )
    if binding.reply is not None and finding.reply_note:
        return binding.action, binding.reply.but(f"{binding.reply.text}; {finding.reply_note}")
    return binding.action, binding.reply
