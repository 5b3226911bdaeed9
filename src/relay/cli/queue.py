"""`relay queue held`: mail the spool keeps for a send-time window, per sender and stream."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from relay.cli import config_option, load_settings_or_exit
from relay.errors import SpoolError
from relay.spool.store import HeldRecipient, held_recipients

__all__ = ["queue"]


@dataclass(slots=True)
class _Stream:
    sender: str | None
    campaign: str | None
    held: int
    next_release: float

    def as_json(self) -> dict[str, object]:
        return {
            "sender": self.sender,
            "campaign": self.campaign,
            "held": self.held,
            "next_release": _moment(self.next_release),
        }


def _moment(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _streams(held: list[HeldRecipient]) -> list[_Stream]:
    streams: dict[tuple[str | None, str | None], _Stream] = {}
    for recipient in held:
        key = (recipient.envelope.sender_id, recipient.envelope.campaign)
        stream = streams.setdefault(key, _Stream(*key, 0, recipient.release_at))
        stream.held += 1
        stream.next_release = min(stream.next_release, recipient.release_at)
    return sorted(streams.values(), key=lambda stream: stream.next_release)


@click.group()
def queue() -> None:
    """The spool: messages accepted and not yet final."""


@queue.command("held")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def held_command(config_path: Path | None, as_json: bool) -> None:
    """Recipients held for a send-time window: how many, and the next release, per sender and
    stream (X-Relay-Campaign)."""
    settings, _ = load_settings_or_exit(config_path)
    try:
        streams = _streams(held_recipients(settings.spool_path, time.time()))
    except SpoolError as exc:
        click.echo(f"relay: {exc}", err=True)
        sys.exit(1)
    total = sum(stream.held for stream in streams)
    if as_json:
        report = {"held": total, "streams": [stream.as_json() for stream in streams]}
        click.echo(json.dumps(report))
        return
    click.echo(f"{'sender':<20} {'campaign':<24} {'held':>6}  next release (UTC)")
    for stream in streams:
        click.echo(
            f"{stream.sender or '-':<20} {stream.campaign or '-':<24} {stream.held:>6}"
            f"  {_moment(stream.next_release)}"
        )
    click.echo(f"{total} recipient(s) held")
