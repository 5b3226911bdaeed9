"""Destinations and their limits: config/shaping.toml shipped with relay, overridden entry by entry
and key by key by [delivery.shaping] in relay.toml.

A domain belongs to the destination named after it when there is an entry for it, else to the
first provider one of whose `mx_suffixes` ends the name of one of its MX hosts, else to a
destination of its own with the "default" limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from relay.config.loader import describe_error, key_path, read_toml
from relay.config.model import ShapingEntry
from relay.config.types import Rate
from relay.delivery.mx import Destination
from relay.errors import ConfigError

__all__ = ["DEFAULT_SHAPING_FILE", "Limits", "Shaping"]

DEFAULT_SHAPING_FILE = Path(__file__).resolve().parents[3] / "config" / "shaping.toml"
DEFAULT = "default"
_REQUIRED = ("max_connections", "messages_per_connection", "connect_timeout", "command_timeout")


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured limits of one destination (before any backoff)."""

    max_connections: int
    messages_per_connection: int
    rates: tuple[Rate, ...]
    connect_timeout: float  # seconds
    command_timeout: float
    sender_connections: int | None  # per sender; None: only max_connections
    sender_rates: tuple[Rate, ...]


def _read(path: Path) -> dict[str, ShapingEntry]:
    data = read_toml(path, "shaping file")
    entries: dict[str, ShapingEntry] = {}
    problems: list[str] = []
    for name, table in data.items():
        try:
            entries[name.lower()] = ShapingEntry.model_validate(table)
        except ValidationError as exc:
            problems.extend(
                f"{path}:{key_path((name, *error['loc']))}: {describe_error(dict(error))}"
                for error in exc.errors()
            )
    if problems:
        raise ConfigError(problems)
    return entries


def _overlay(base: ShapingEntry | None, override: ShapingEntry) -> ShapingEntry:
    if base is None:
        return override
    # None is "inherit": every key of an entry is optional.
    changed = {
        key: getattr(override, key)
        for key in ShapingEntry.model_fields
        if getattr(override, key) is not None
    }
    return base.model_copy(update=changed)


class Shaping:
    """Which destination a domain belongs to, and that destination's limits."""

    def __init__(
        self,
        overrides: dict[str, ShapingEntry],
        source: str = "relay.toml",
        path: Path = DEFAULT_SHAPING_FILE,
    ) -> None:
        entries = _read(path)
        unknown = [
            f"{source}:delivery.shaping.{name}: neither an entry of {path} nor a domain;"
            " give it mx_suffixes to make it a provider"
            for name, entry in overrides.items()
            if name not in entries and "." not in name and entry.mx_suffixes is None
        ]
        if unknown:
            raise ConfigError(unknown)
        for name, entry in overrides.items():
            entries[name] = _overlay(entries.get(name), entry)
        default = entries.get(DEFAULT)
        missing = [key for key in _REQUIRED if default is None or getattr(default, key) is None]
        if missing:
            raise ConfigError(
                [
                    f"{path}:{DEFAULT}.{key}: required (the limits of every other destination)"
                    for key in missing
                ]
            )
        self._entries = entries
        self._providers = [
            (suffix, name) for name, entry in entries.items() for suffix in entry.mx_suffixes or ()
        ]
        self._limits: dict[str, Limits] = {}

    def destination_of(self, destination: Destination) -> str:
        """The name of the destination whose budget mail to this domain uses."""
        if destination.domain in self._entries:
            return destination.domain
        for host in destination.hosts:
            name = host.name.lower().rstrip(".")
            for suffix, provider in self._providers:
                if name == suffix or name.endswith("." + suffix):
                    return provider
        return destination.domain

    def limits(self, name: str) -> Limits:
        limits = self._limits.get(name)
        if limits is None:
            limits = self._limits[name] = self._resolve(name)
        return limits

    def _resolve(self, name: str) -> Limits:
        default = self._entries[DEFAULT]
        entry = _overlay(default, self._entries[name]) if name in self._entries else default
        per_sender = entry.per_sender
        # "default" has every one of them (checked at load), and entries inherit from it.
        assert entry.max_connections is not None
        assert entry.messages_per_connection is not None
        assert entry.connect_timeout is not None
        assert entry.command_timeout is not None
        return Limits(
            max_connections=entry.max_connections,
            messages_per_connection=entry.messages_per_connection,
            rates=tuple(entry.rate or ()),
            connect_timeout=entry.connect_timeout.total_seconds(),
            command_timeout=entry.command_timeout.total_seconds(),
            sender_connections=per_sender.max_connections if per_sender else None,
            sender_rates=tuple(per_sender.rate) if per_sender else (),
        )
