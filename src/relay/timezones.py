"""IANA time zone names (tz database), as read from policy files and store imports."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

__all__ = ["TimeZoneName", "zone"]


def zone(name: str) -> ZoneInfo:
    """The zone `name`; ValueError when the tz database does not know it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name, e.g. 'Europe/Berlin'") from None


def _known(name: str) -> str:
    zone(name)
    return name


TimeZoneName = Annotated[str, AfterValidator(_known)]
