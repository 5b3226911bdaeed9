"""Cadence rules: how often one sender's commercial mail reaches one recipient (frequency caps)
and whether it is the same mail again (duplicate campaigns, duplicate content). They read the
sender's delivery history for the recipient (Fact.SEND_HISTORY, relay.stores.history), which the
checkpoint gathers at RCPT for the longest period any of them is configured with.

Transactional mail is never counted or capped. A period is written like relay's configuration
durations ("12h", "1d", "30d").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from relay.config.types import Duration
from relay.policy import inspect
from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage
from relay.policy.rules import Fact, rule
from relay.stores.history import Delivery
from relay.stores.models import MessageClass

if TYPE_CHECKING:
    from relay.policy.files import Policy

__all__ = ["FREQUENCY_CAP", "history_window"]

FREQUENCY_CAP = "CADENCE-FREQUENCY-CAP"
DUPLICATE_CAMPAIGN = "CADENCE-DUPLICATE-CAMPAIGN"
DUPLICATE_CONTENT = "CADENCE-DUPLICATE-CONTENT"

# The configuration's duration syntax, kept as a timedelta in the params the checks receive
# (Duration itself serialises back to text).
Period = Annotated[
    timedelta, BeforeValidator(TypeAdapter(Duration).validate_python), Field(gt=timedelta(0))
]


class Limit(BaseModel):
    """At most `count` messages per rolling `period`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: Annotated[int, Field(ge=1)]
    period: Period


class FrequencyCapParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # About two a day and six a month: promotional cadence that mailbox providers' complaint
    # figures tolerate for consumers (README, operator section).
    windows: Annotated[list[Limit], Field(min_length=1)] = [
        Limit(count=2, period=timedelta(days=1)),
        Limit(count=6, period=timedelta(days=30)),
    ]
    per_list: bool = False  # count each list (X-Relay-Campaign) on its own


class DuplicateCampaignParams(Limit):
    count: Annotated[int, Field(ge=1)] = 1
    period: Period = timedelta(days=365)


class DuplicateContentParams(Limit):
    count: Annotated[int, Field(ge=1)] = 3
    period: Period = timedelta(days=30)


def history_window(policies: Iterable[Policy]) -> timedelta:
    """The longest period the loaded cadence rules look back: how much delivery history the
    checkpoint reads at RCPT and the history store keeps. Zero when none is bound."""
    periods = [timedelta(0)]
    for policy in policies:
        for binding in policy.bindings:
            if binding.rule_id == FREQUENCY_CAP:
                periods.extend(window["period"] for window in binding.params["windows"])
            elif binding.rule_id in (DUPLICATE_CAMPAIGN, DUPLICATE_CONTENT):
                periods.append(binding.params["period"])
    return max(periods)


def period_text(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _counted(context: MessageContext) -> bool:
    return context.commercial and context.send_history is not None


def _within(context: MessageContext, period: timedelta, same: Iterable[Delivery]) -> list[Delivery]:
    since = context.now - period
    return [delivery for delivery in same if delivery.at > since]


def _inputs(
    context: MessageContext, limit: Mapping[str, Any], found: Sequence[Delivery]
) -> dict[str, Any]:
    return {
        "limit": f"{limit['count']} per {period_text(limit['period'])}",
        "sent": len(found),
        "queue_ids": [delivery.queue_id for delivery in found],
        "list_id": context.list_id,
    }


@rule(FREQUENCY_CAP, Stage.RCPT, params=FrequencyCapParams, needs=[Fact.SEND_HISTORY])
def frequency_cap(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """At most `count` commercial messages of this sender to this recipient per rolling
    `period`, for each of the windows (per list with `per_list`)."""
    if not _counted(context):
        return []
    assert context.send_history is not None
    per_list = bool(params["per_list"])
    if context.message is None and (per_list or context.message_class is MessageClass.MIXED):
        # Before the data the list, and on a mixed stream the message's class, are unknown:
        # the rule decides again at end of data, with the message's declarations.
        return []
    history = [
        delivery
        for delivery in context.send_history
        if not per_list or delivery.list_id == context.list_id
    ]
    tripped: list[tuple[Mapping[str, Any], list[Delivery], datetime]] = []
    for window in params["windows"]:
        found = _within(context, window["period"], history)
        if len(found) >= window["count"]:
            # Room for one more once all but count - 1 of them have left the window.
            frees_at = found[len(found) - window["count"]].at + window["period"]
            tripped.append((window, found, frees_at))
    if not tripped:
        return []
    frees_at = max(at for _, _, at in tripped)
    limits = ", ".join(
        f"{len(found)} in {period_text(window['period'])} (cap {window['count']})"
        for window, found, _ in tripped
    )
    window, found, _ = max(tripped, key=lambda item: item[2])
    when = frees_at.isoformat(timespec="seconds")
    return [
        Finding(
            f"{limits} commercial messages of this sender to the recipient",
            _inputs(context, window, found) | {"per_list": per_list, "frees_at": when},
            reply_note=f"{FREQUENCY_CAP}: the window frees at {when}",
        )
    ]


@rule(DUPLICATE_CAMPAIGN, Stage.DATA, params=DuplicateCampaignParams, needs=[Fact.SEND_HISTORY])
def duplicate_campaign(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The same campaign (X-Relay-Campaign) reaches the recipient at most `count` times per
    `period`."""
    if not _counted(context) or context.list_id is None:
        return []
    assert context.send_history is not None
    same = (d for d in context.send_history if d.list_id == context.list_id)
    found = _within(context, params["period"], same)
    if len(found) < params["count"]:
        return []
    return [
        Finding(
            f"campaign {context.list_id!r} already sent to the recipient {len(found)} time(s)"
            f" in {period_text(params['period'])}",
            _inputs(context, params, found),
        )
    ]


@rule(DUPLICATE_CONTENT, Stage.DATA, params=DuplicateContentParams, needs=[Fact.SEND_HISTORY])
def duplicate_content(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """The same content (Subject and body text, normalised: inspect.content_hash) reaches the
    recipient at most `count` times per `period`, whatever campaign it is sent under."""
    if not _counted(context) or context.message is None:
        return []
    assert context.send_history is not None
    digest = context.content_hash or inspect.content_hash(context.message)
    same = (d for d in context.send_history if d.content_hash == digest)
    found = _within(context, params["period"], same)
    if len(found) < params["count"]:
        return []
    return [
        Finding(
            f"the same content already sent to the recipient {len(found)} time(s)"
            f" in {period_text(params['period'])}",
            _inputs(context, params, found) | {"content_hash": digest},
        )
    ]
