"""`relay bounces classify FILE...`: one JSON line per failed recipient of each bounce."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["UNREADABLE_EXIT", "bounces"]

UNREADABLE_EXIT = 1


@click.group("bounces")
def bounces() -> None:
    """Bounce messages (DSNs and the non-standard formats)."""


@bounces.command("classify")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def classify_command(files: tuple[Path, ...]) -> None:
    """Print one JSON object per failed recipient of each FILE (a raw message):
    {"file", "recipient", "reason", "category", "hard", "status", "replycode"}. A message that is
    not a bounce (an auto-reply, a success DSN, a complaint report, ordinary mail), or a report
    that names no recipient, prints nothing.

    Exit status: 0, or 1 when a FILE could not be read (said on stderr; the other files are
    still classified)."""
    from relay.feedback.bounces import classify

    status = 0
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            click.echo(f"relay: {path}: cannot read: {exc.strerror or exc}", err=True)
            status = UNREADABLE_EXIT
            continue
        for record in classify(raw):
            if record.is_failure:
                click.echo(json.dumps(record.to_json(str(path)), ensure_ascii=False))
    sys.exit(status)
