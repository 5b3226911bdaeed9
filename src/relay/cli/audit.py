"""`relay audit verify|export`: the compliance officer's view of the audit log."""

from __future__ import annotations

import click

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The append-only, hash-chained decision log."""
