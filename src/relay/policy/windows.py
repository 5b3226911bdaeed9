"""Send-time windows: the days and hours, in a recipient's local time, when a stream's commercial
mail may reach them (DESIGN §2, "cadence is policy too").

Wall times are read in the recipient's zone as the tz database says. A time skipped by a
daylight-saving change is read with the offset before the change (02:30 on a spring-forward
night is 03:30 summer time); a time that happens twice is its first occurrence. A window whose
end comes at or before its start ends on the next day (Fri 22:00-02:00 closes Saturday 02:00);
`days` name the day a window opens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["WEEKDAYS", "Opening", "SendWindow", "next_opening", "spread_offset"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()

# Yesterday (a window crossing midnight may still be open) to two weeks ahead (a weekly window
# whose next occurrence falls wholly in an hour skipped by a daylight-saving change).
_DAYS_AROUND = range(-1, 15)


@dataclass(frozen=True, slots=True)
class SendWindow:
    days: frozenset[int]  # date.weekday() numbers of the days the window opens
    start: time
    end: time

    def __str__(self) -> str:
        days = ",".join(name for number, name in enumerate(WEEKDAYS) if number in self.days)
        return f"{days} {self.start.isoformat('minutes')}-{self.end.isoformat('minutes')}"


@dataclass(frozen=True, slots=True)
class Opening:
    """When a window next opens (UTC) and how long it then stays open."""

    at: datetime
    length: timedelta


def next_opening(windows: Iterable[SendWindow], now: datetime, zone: ZoneInfo) -> Opening | None:
    """None when `now` (aware) is inside one of `windows` in `zone`; else the earliest opening
    after `now`."""
    today = now.astimezone(zone).date()
    earliest: Opening | None = None
    for window in windows:
        for offset in _DAYS_AROUND:
            day = today + timedelta(days=offset)
            if day.weekday() not in window.days:
                continue
            closing_day = day + timedelta(days=1) if window.end <= window.start else day
            opens = datetime.combine(day, window.start, zone).astimezone(UTC)
            closes = datetime.combine(closing_day, window.end, zone).astimezone(UTC)
            if closes <= opens:
                continue  # the whole window falls in an hour the clocks skip that night
            if opens <= now < closes:
                return None
            if opens > now and (earliest is None or opens < earliest.at):
                earliest = Opening(opens, closes - opens)
    return earliest


def spread_offset(key: str, span: timedelta) -> timedelta:
    """A deterministic point in [0, span) for `key`, so that the mail held for one opening is
    released over the window rather than all at its first second."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(seconds=int(fraction * span.total_seconds()))
