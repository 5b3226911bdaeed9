"""The reason table (`reasons.toml`, data) and the rules that read it: which reason a diagnostic
text or a status code names, its category, its default status and Sisimai's hard-bounce rule."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from relay.feedback.model import BounceCategory

__all__ = ["Reason", "by_name", "from_status", "from_text", "is_hard", "normalise"]

_SPACE = re.compile(r"\s+")
_HARD = frozenset({"userunknown", "hostunknown", "hasmoved"})


@dataclass(frozen=True, slots=True)
class Reason:
    name: str
    category: BounceCategory
    default_status: str
    phrases: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    statuses: frozenset[str]

    def matches(self, text: str) -> bool:
        """`text` must already be `normalise`d."""
        return any(phrase in text for phrase in self.phrases) or any(
            pattern.search(text) for pattern in self.patterns
        )


@cache
def _table() -> tuple[Reason, ...]:
    data = tomllib.loads(resources.files(__package__).joinpath("reasons.toml").read_text("utf-8"))
    return tuple(
        Reason(
            name=entry["name"],
            category=BounceCategory(entry["category"]),
            default_status=entry.get("default", ""),
            phrases=tuple(entry.get("phrases", ())),
            patterns=tuple(re.compile(p) for p in entry.get("patterns", ())),
            statuses=frozenset(entry.get("status", ())),
        )
        for entry in data["reason"]
    )


@cache
def by_name(name: str) -> Reason:
    return next(reason for reason in _table() if reason.name == name)


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def from_text(text: str) -> str | None:
    """The first reason (in table order) whose phrases occur in `text` (normalised)."""
    return next((reason.name for reason in _table() if reason.matches(text)), None)


def from_status(status: str | None) -> str | None:
    """The reason a status code names by itself, if it does."""
    if not status:
        return None
    return next((reason.name for reason in _table() if status in reason.statuses), None)


def is_hard(reason: str, status: str | None, replycode: int | None) -> bool:
    """Sisimai's rule: unknown user or host and a moved mailbox are hard; a domain that accepts
    no mail is hard when the failure is permanent; everything else is soft."""
    if reason in _HARD:
        return True
    if reason == "notaccept":
        return (status or "").startswith("5") or (replycode or 0) >= 500
    return False
