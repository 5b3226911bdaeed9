"""The rewrite stage as the ingest pipeline runs it: which fixes a message gets (relay.rewrite.plan)
and one recipient's copy made with them, before it is signed.

The unsubscribe token names the recipient, so a fixed message is made once per recipient; the
fields the fixes add that do not depend on the recipient (Date, Message-ID) are the same in every
copy. Each fix's changes are recorded under the first rule that ordered it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email import policy as email_policy
from email.parser import BytesParser
from email.utils import getaddresses

from relay.rewrite import Change, Rewrite, Unfixable
from relay.rewrite.footer import FooterLabels, fix_footer
from relay.rewrite.long_lines import fix_long_lines
from relay.rewrite.plan import FIXES, Fix, FixPlan, FixPreferences, plan
from relay.rewrite.required_headers import fix_required_headers, new_message_id
from relay.rewrite.subject_prefix import fix_subject_prefix
from relay.rewrite.unsubscribe import UnsubscribeTokens, fix_unsubscribe, unsubscribe_links
from relay.stores.models import SenderProfile

__all__ = ["DEFAULT_AD_PREFIX", "Copy", "Rewriter", "ordered_by", "preferences"]

log = logging.getLogger("relay.rewrite")

DEFAULT_AD_PREFIX = "【广告】"
_ALL_FIXES = frozenset(Fix)


def preferences(sender: SenderProfile) -> FixPreferences:
    """The sender profile's choices as the plan reads them."""
    return FixPreferences(
        opted_in=_ALL_FIXES if sender.fix_us else frozenset(),
        opted_out=frozenset() if sender.fixes_allowed else _ALL_FIXES,
    )


@dataclass(frozen=True, slots=True)
class Copy:
    """One recipient's fixed message and what changed."""

    content: bytes
    changes: tuple[Change, ...]


class Rewriter:
    """Plans and applies fixes with relay's unsubscribe endpoints and token key."""

    def __init__(
        self,
        tokens: UnsubscribeTokens,
        https_host: str,
        mailto_domain: str,
        can_sign: Callable[[bytes], bool],
        labels: FooterLabels | None = None,
    ) -> None:
        self._tokens = tokens
        self._https_host = https_host
        self._mailto_domain = mailto_domain
        self._can_sign = can_sign
        self._labels = labels or FooterLabels()
        try:
            unsubscribe_links("0", https_host, mailto_domain)
            self._usable = True
        except ValueError as exc:  # no fixes then: the rules refuse with their replies
            log.warning("rewrites disabled: the unsubscribe endpoints are unusable: %s", exc)
            self._usable = False

    def plan(
        self,
        needed: Iterable[tuple[str, str | None]],
        sender: SenderProfile | None,
        content: bytes,
    ) -> FixPlan:
        """The fixes for `needed` (rule id, jurisdiction); without a sender profile (nothing to
        name in a token or footer) or an aligned DKIM key, none."""
        needed = list(needed)
        if sender is None or not self._usable:
            return FixPlan((), tuple(dict.fromkeys(rule_id for rule_id, _ in needed)))
        return plan(needed, preferences(sender), aligned_key=self._can_sign(content))

    def message_id(self, content: bytes) -> str:
        """A new Message-ID under the From domain (else the unsubscribe mailto domain)."""
        domain = _from_domain(content) or self._mailto_domain
        try:
            return new_message_id(domain)
        except ValueError:
            return new_message_id(self._mailto_domain)

    def apply(
        self,
        content: bytes,
        fixes: Iterable[Fix],
        *,
        ordered_by: Mapping[Fix, str],
        sender: SenderProfile,
        address_hash: str,
        list_id: str | None,
        ad_prefix: str,
        now: datetime,
        message_id: str,
    ) -> Copy | Unfixable:
        """The copy of `content` for the recipient whose keyed hash is `address_hash`, with
        `fixes` applied in the plan's order."""
        token = self._tokens.issue(
            sender_id=sender.sender_id,
            list_id=list_id,
            address_hash=address_hash,
            issued=now.date(),
        )
        links = unsubscribe_links(token, self._https_host, self._mailto_domain)
        changes: list[Change] = []
        for fix in fixes:
            rule_id = ordered_by[fix]
            result: Rewrite | Unfixable
            if fix is Fix.REQUIRED_HEADERS:
                result = fix_required_headers(
                    content,
                    domain=_from_domain(content) or self._mailto_domain,
                    now=now,
                    message_id=message_id,
                    rule_id=rule_id,
                )
            elif fix is Fix.UNSUBSCRIBE:
                result = fix_unsubscribe(content, links, rule_id=rule_id)
            elif fix is Fix.SUBJECT_PREFIX:
                result = fix_subject_prefix(content, ad_prefix, rule_id=rule_id)
            elif fix is Fix.FOOTER:
                result = fix_footer(content, sender, links, rule_id=rule_id, labels=self._labels)
            else:
                result = fix_long_lines(content, rule_id=rule_id)
            if isinstance(result, Unfixable):
                return result
            content, made = result
            changes.extend(made)
        return Copy(content, tuple(changes))


def ordered_by(needed: Iterable[str], fixes: Iterable[Fix]) -> dict[Fix, str]:
    """For each fix, the first rule of `needed` that ordered it."""
    needed = list(needed)
    return {
        fix: next((rule_id for rule_id in needed if fix in FIXES.get(rule_id, ())), fix.value)
        for fix in fixes
    }


def _from_domain(content: bytes) -> str | None:
    parsed = BytesParser(policy=email_policy.compat32).parsebytes(content, headersonly=True)
    values = [str(value) for value in parsed.get_all("From", [])]
    addresses = [address for _, address in getaddresses(values) if "@" in address]
    return addresses[0].rpartition("@")[2].strip().rstrip(".").lower() if addresses else None
