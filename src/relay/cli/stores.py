"""`relay suppressions|consent|senders ...`: manage the stores from the command line."""

from __future__ import annotations

import click

__all__ = ["consent", "senders", "suppressions"]


@click.group()
def suppressions() -> None:
    """Suppression list: addresses that must not be mailed."""


@click.group()
def consent() -> None:
    """Consent records: the proof that a recipient agreed to receive a sender's mail."""


@click.group()
def senders() -> None:
    """Sender profiles: verified From domains, legal identity, default jurisdiction."""
