"""Automatic backoff: which replies mean "slow down" (config/backoff.toml, data) and how a
destination's pace falls after them and comes back after sustained success.

A destination's pace is a factor of its configured limits: a slow-down multiplies it by `cut`
(once per `cut_interval`: the other answers to the same burst are the same news), down to
`floor`; every `successes` successful transactions in a row multiply it by `step`, up to 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relay.config.loader import describe_error, key_path, read_toml
from relay.config.types import Duration
from relay.errors import ConfigError
from relay.spool.records import DeliveryResult

__all__ = ["DEFAULT_BACKOFF_FILE", "BackoffAction", "BackoffRule", "BackoffTable", "Pace"]

DEFAULT_BACKOFF_FILE = Path(__file__).resolve().parents[3] / "config" / "backoff.toml"
_REPLY_CODE = re.compile(r"^([245]\d\d)\b")


class BackoffAction(StrEnum):
    SLOW = "slow"
    SUSPEND = "suspend"
    PAUSE_SENDER = "pause-sender"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BackoffRule(_Model):
    name: Annotated[str, Field(min_length=1)]
    code: list[Annotated[int, Field(ge=200, le=599)]] = Field(default_factory=list)
    status: list[Annotated[str, Field(pattern=r"^[245](\.\d{1,3}){0,2}\.?$")]] = Field(
        default_factory=list
    )
    text: re.Pattern[str] | None = None
    action: BackoffAction
    duration: Duration = Field(default=timedelta(0), alias="for")

    @field_validator("text", mode="before")
    @classmethod
    def _compile(cls, text: object) -> object:
        if not isinstance(text, str):
            return text
        try:
            return re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None

    def matches(self, result: DeliveryResult) -> bool:
        if self.code:
            code = _REPLY_CODE.match(result.diagnostic)
            if code is None or int(code.group(1)) not in self.code:
                return False
        if self.status and not result.status.startswith(tuple(self.status)):
            return False
        return self.text is None or self.text.search(result.diagnostic) is not None


class Recovery(_Model):
    cut: Annotated[float, Field(gt=0, lt=1)] = 0.5
    floor: Annotated[float, Field(gt=0, le=1)] = 0.05
    cut_interval: Duration = timedelta(seconds=30)
    successes: Annotated[int, Field(ge=1)] = 20
    step: Annotated[float, Field(gt=1)] = 2.0


class _File(_Model):
    recovery: Recovery = Field(default_factory=Recovery)
    rules: list[BackoffRule]


@dataclass(frozen=True, slots=True)
class BackoffTable:
    recovery: Recovery
    rules: tuple[BackoffRule, ...]

    @classmethod
    def load(cls, path: Path | None) -> BackoffTable:
        path = path or DEFAULT_BACKOFF_FILE
        try:
            model = _File.model_validate(read_toml(path, "backoff table"))
        except ValidationError as exc:
            raise ConfigError(
                [
                    f"{path}:{key_path(tuple(error['loc']))}: {describe_error(dict(error))}"
                    for error in exc.errors()
                ]
            ) from None
        return cls(model.recovery, tuple(model.rules))

    def match(self, result: DeliveryResult) -> BackoffRule | None:
        """The first rule the reply (or connection failure) matches; None for a success."""
        if result.success:
            return None
        return next((rule for rule in self.rules if rule.matches(result)), None)


@dataclass(slots=True)
class Pace:
    """How much of its configured limits a destination may use now."""

    factor: float = 1.0
    streak: int = 0  # successful transactions in a row
    last_cut: float = -math.inf
    suspended_until: float = 0.0

    def slow(self, recovery: Recovery, now: float) -> bool:
        """Cut the pace; False when a recent cut already answered this burst."""
        self.streak = 0
        if now - self.last_cut < recovery.cut_interval.total_seconds():
            return False
        self.last_cut = now
        cut = max(recovery.floor, self.factor * recovery.cut)
        changed = cut < self.factor
        self.factor = cut
        return changed

    def suspend(self, until: float) -> bool:
        if until <= self.suspended_until:
            return False
        self.suspended_until = until
        return True

    def succeed(self, recovery: Recovery) -> bool:
        """Count a success; True when it restored a step of the pace."""
        if self.factor >= 1.0:
            return False
        self.streak += 1
        if self.streak < recovery.successes:
            return False
        self.streak = 0
        self.factor = min(1.0, self.factor * recovery.step)
        return True

    def scaled(self, limit: int) -> int:
        return max(1, math.floor(limit * self.factor))
