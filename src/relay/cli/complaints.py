"""`relay complaints parse FILE...`: what feedback-loop reports say, one JSON line per
complained-about recipient (DESIGN §4)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from relay.feedback.complaints import parse

__all__ = ["complaints"]

UNREADABLE_EXIT = 1


@click.group()
def complaints() -> None:
    """Complaint reports: ARF feedback loops (RFC 5965), auth-failure reports (RFC 6591)."""


@complaints.command("parse")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def parse_command(files: tuple[str, ...]) -> None:
    """Print {"file", "feedback_type", "original_recipient", "original_message_id",
    "source_ip", "reported_domain"} per complained-about recipient of each FILE (one line with
    original_recipient null when the report names nobody; nothing for a file that is not a
    complaint report).

    Exit status: 0, or 1 when a FILE could not be read (the others are still parsed)."""
    unreadable = False
    for file in files:
        try:
            raw = Path(file).read_bytes()
        except OSError as exc:
            click.echo(f"relay: cannot read {file}: {exc.strerror or exc}", err=True)
            unreadable = True
            continue
        for record in parse(raw):
            click.echo(json.dumps(record.to_json(file)))
    if unreadable:
        sys.exit(UNREADABLE_EXIT)
