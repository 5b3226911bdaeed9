"""Send-time windows (CADENCE-SEND-WINDOW): commercial mail of a stream that declares windows is
held in the spool until the recipient's local time is inside one (relay.policy.windows).

The recipient's zone: the consent record's `time_zone`, else the policy's default for the
address's ccTLD (`zones`), else the sender profile's `time_zone`, else UTC. A finding carries
`release_at`: the next opening plus a per-recipient offset within `spread` (default: the whole
window), which the checkpoint turns into the recipient's first delivery time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, time, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from relay.config.types import Duration
from relay.policy import inspect
from relay.policy.context import MessageContext
from relay.policy.model import Finding, Stage
from relay.policy.rules import rule
from relay.policy.windows import WEEKDAYS, SendWindow, next_opening, spread_offset
from relay.timezones import TimeZoneName, zone

__all__ = ["SendWindowParams"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Window(_Params):
    days: list[Weekday] = Field(min_length=1)
    start: time
    end: time  # at or before `start`: the window ends the next day

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are the same time: give the hours the window lasts")
        return self

    def window(self) -> SendWindow:
        return SendWindow(frozenset(WEEKDAYS.index(day) for day in self.days), self.start, self.end)


class _Stream(_Params):
    sender: str | None = None  # a sender profile id; None: every sender
    campaign: str | None = None  # an X-Relay-Campaign; None: all the sender's commercial mail
    windows: list[_Window] = Field(min_length=1)

    def matches(self, sender_id: str | None, list_id: str | None) -> bool:
        return self.sender in (None, sender_id) and self.campaign in (None, list_id)

    @property
    def specificity(self) -> int:
        return (self.campaign is not None) * 2 + (self.sender is not None)

    @property
    def name(self) -> str:
        return f"{self.sender or '*'}/{self.campaign or '*'}"


class SendWindowParams(_Params):
    streams: list[_Stream] = []
    zones: dict[
        Annotated[str, StringConstraints(to_lower=True, pattern=r"^[a-z0-9-]+$")], TimeZoneName
    ] = {}
    spread: Duration | None = None  # None: over the whole window


# Checks get params as the dict a policy file's model dumped; each is parsed back once.
_PARSED: dict[int, tuple[Mapping[str, Any], SendWindowParams]] = {}


def _parsed(params: Mapping[str, Any]) -> SendWindowParams:
    cached = _PARSED.get(id(params))
    if cached is None or cached[0] is not params:
        cached = (params, SendWindowParams.model_validate(dict(params)))
        _PARSED[id(params)] = cached
    return cached[1]


def _recipient_zone(context: MessageContext, zones: Mapping[str, str]) -> tuple[str, str]:
    """The recipient's zone name and where it came from."""
    recorded = [record for record in context.consents if record.time_zone]
    if recorded:
        latest = max(recorded, key=lambda record: record.obtained_at)
        assert latest.time_zone is not None
        return latest.time_zone, "consent"
    tld = inspect.domain_of(context.recipient).rpartition(".")[2]
    if tld in zones:
        return zones[tld], "tld"
    if context.sender is not None and context.sender.time_zone:
        return context.sender.time_zone, "sender"
    return "UTC", "default"


@rule("CADENCE-SEND-WINDOW", Stage.DATA, params=SendWindowParams)
def send_window(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """Commercial mail of a stream with send windows waits for the recipient's local window."""
    if not context.commercial:
        return []
    settings = _parsed(params)
    sender_id = context.sender.sender_id if context.sender else None
    streams = [s for s in settings.streams if s.matches(sender_id, context.list_id)]
    if not streams:
        return []
    stream = max(streams, key=lambda s: s.specificity)
    windows = [window.window() for window in stream.windows]
    zone_name, zone_source = _recipient_zone(context, settings.zones)
    opening = next_opening(windows, context.now, zone(zone_name))
    if opening is None:
        return []
    span = min(settings.spread or opening.length, opening.length)
    message_id = inspect.header(context.message, "Message-ID") or ""
    release = opening.at + spread_offset(f"{context.recipient}\0{message_id}", span)
    local = release.astimezone(zone(zone_name))
    return [
        Finding(
            f"outside the send windows of stream {stream.name}: held until"
            f" {local.isoformat(timespec='seconds')} ({zone_name})",
            {
                "release_at": release.astimezone(UTC).isoformat(timespec="seconds"),
                "time_zone": zone_name,
                "zone_source": zone_source,
                "stream": stream.name,
                "windows": [str(window) for window in windows],
                "spread_seconds": int(span / timedelta(seconds=1)),
            },
        )
    ]
