"""`relay stats`: list-health figures per sender and campaign over rolling windows, read from the
stores file (also while `relay serve` writes it). See relay.stores.stats for what is counted.

A row per sender and campaign ('' is mail without X-Relay-Campaign, and refusals at RCPT), and,
unless --campaign is given, one per sender over all its campaigns (`campaign` null in JSON,
`*` in the table): the complaint thresholds of the mailbox providers apply to the whole stream.
Exit status 0; 1 when the stores cannot be read; 2 bad configuration.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from relay.cli import config_option, load_settings_or_exit
from relay.errors import StoreUnavailable
from relay.stores.stats import COMPLAINT_PAUSE, COMPLAINT_WARN, Figures, SqliteStats

__all__ = ["WINDOWS", "stats"]

STORE_ERROR_EXIT = 1
WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
THRESHOLDS = (
    f"complaint rate (complaints / delivered): warn at {COMPLAINT_WARN:.1%},"
    f" pause at {COMPLAINT_PAUSE:.1%} (MBP-COMPLAINT-RATE);"
    " bounce rates over accepted, unsubscribe rate over delivered"
)
_COLUMNS = (
    "sender",
    "campaign",
    "window",
    "accepted",
    "delivered",
    "hard",
    "soft",
    "complaints",
    "unsubscribes",
    "flag",
    "refused by rule",
)

# (sender, campaign or None for all of the sender's campaigns) -> window name -> figures
Rows = dict[tuple[str, str | None], dict[str, Figures]]


@click.command("stats")
@click.option("--campaign", default=None, help="Only this X-Relay-Campaign ('' for none).")
@click.option("--sender", "sender_id", default=None, help="Only this sender profile.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
@config_option
def stats(
    campaign: str | None, sender_id: str | None, as_json: bool, config_path: Path | None
) -> None:
    """List health per sender and campaign over 1, 7 and 30 days: delivered, bounce,
    complaint and unsubscribe rates, refusals by rule; complaint thresholds flagged."""
    settings, _ = load_settings_or_exit(config_path)
    now = datetime.now(UTC)
    try:
        rows = asyncio.run(_read(settings.stores_path, now, sender_id, campaign))
    except StoreUnavailable as exc:
        click.echo(f"relay: {exc}", err=True)
        sys.exit(STORE_ERROR_EXIT)
    if as_json:
        click.echo(json.dumps(_document(rows, now), ensure_ascii=False, indent=2))
    else:
        click.echo(_table(rows))


async def _read(path: Path, now: datetime, sender_id: str | None, campaign: str | None) -> Rows:
    rows: Rows = {}
    async with SqliteStats(path) as store:
        for name, window in WINDOWS.items():
            found = await store.figures(window, now, sender_id=sender_id, campaign=campaign)
            for (sender, list_id), figures in found.items():
                rows.setdefault((sender, list_id), {})[name] = figures
                if campaign is None:
                    every = rows.setdefault((sender, None), {})
                    every[name] = every.get(name, Figures()) + figures
    # Each sender's total first, then its campaigns.
    order = sorted(rows, key=lambda key: (key[0], key[1] is not None, key[1] or ""))
    return {key: rows[key] for key in order}


def _window(figures: Figures) -> dict[str, Any]:
    level = figures.complaint_level
    return {
        "accepted": figures.accepted,
        "delivered": figures.delivered,
        "hard_bounces": figures.hard_bounces,
        "soft_bounces": figures.soft_bounces,
        "complaints": figures.complaints,
        "unsubscribes": figures.unsubscribes,
        "refusals": dict(figures.refusals),
        "hard_bounce_rate": figures.hard_bounce_rate,
        "soft_bounce_rate": figures.soft_bounce_rate,
        "complaint_rate": figures.complaint_rate,
        "unsubscribe_rate": figures.unsubscribe_rate,
        "complaint_flag": level.value if level else None,
    }


def _document(rows: Rows, now: datetime) -> dict[str, Any]:
    return {
        "at": now.isoformat(),
        "thresholds": {
            "rule": "MBP-COMPLAINT-RATE",
            "complaint_warn": COMPLAINT_WARN,
            "complaint_pause": COMPLAINT_PAUSE,
        },
        "rows": [
            {
                "sender": sender,
                "campaign": campaign,
                "windows": {name: _window(windows.get(name, Figures())) for name in WINDOWS},
            }
            for (sender, campaign), windows in rows.items()
        ],
    }


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.2%}"


def _table(rows: Rows) -> str:
    lines = [_COLUMNS]
    for (sender, campaign), windows in rows.items():
        for name in WINDOWS:
            figures = windows.get(name, Figures())
            level = figures.complaint_level
            lines.append(
                (
                    sender,
                    "*" if campaign is None else campaign or "-",
                    name,
                    str(figures.accepted),
                    str(figures.delivered),
                    _percent(figures.hard_bounce_rate),
                    _percent(figures.soft_bounce_rate),
                    _percent(figures.complaint_rate),
                    _percent(figures.unsubscribe_rate),
                    level.value.upper() if level else "ok",
                    " ".join(f"{rule}:{n}" for rule, n in figures.refusals.items()) or "-",
                )
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join([*text, "", THRESHOLDS])
