"""`relay stats` as an operator runs it: a real subprocess on a TOML config whose stores hold
figures of two senders and campaigns, some older than a day or a week."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from relay.stores.stats import Kind, SqliteStats, Tally
from tests.stores.test_stores_cli import Operator


@pytest.fixture
def operator(tmp_path) -> Operator:
    operator = Operator(tmp_path)
    now = datetime.now(UTC)

    async def fill() -> None:
        async with SqliteStats(operator.state_dir / "stores.sqlite") as stats:
            await stats.add(
                now,
                [
                    Tally("acme", "spring", Kind.ACCEPTED, 1000),
                    Tally("acme", "spring", Kind.DELIVERED, 1000),
                    Tally("acme", "spring", Kind.HARD_BOUNCE, 10),
                    Tally("acme", "spring", Kind.COMPLAINT, 2),
                    Tally("acme", "", Kind.REFUSED, 3, "EU-CONSENT-REQUIRED"),
                    Tally("globex", "spring", Kind.ACCEPTED, 10),
                ],
            )
            await stats.add(
                now - timedelta(days=3),
                [
                    Tally("acme", "spring", Kind.DELIVERED, 1000),
                    Tally("acme", "spring", Kind.COMPLAINT, 6),
                    Tally("acme", "spring", Kind.UNSUBSCRIBE, 20),
                ],
            )

    asyncio.run(fill())
    return operator


def test_json_per_sender_and_campaign_over_three_windows(operator):
    result = operator.run("stats", "--sender", "acme", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["thresholds"] == {
        "rule": "MBP-COMPLAINT-RATE",
        "complaint_warn": 0.001,
        "complaint_pause": 0.003,
    }
    rows = {row["campaign"]: row["windows"] for row in document["rows"]}
    assert list(rows) == [None, "", "spring"]  # all campaigns first
    assert [row["sender"] for row in document["rows"]] == ["acme"] * 3
    day, week = rows["spring"]["1d"], rows["spring"]["7d"]
    assert day == {
        "accepted": 1000,
        "delivered": 1000,
        "hard_bounces": 10,
        "soft_bounces": 0,
        "complaints": 2,
        "unsubscribes": 0,
        "refusals": {},
        "hard_bounce_rate": 0.01,
        "soft_bounce_rate": 0.0,
        "complaint_rate": 0.002,
        "unsubscribe_rate": 0.0,
        "complaint_flag": "warn",
    }
    assert (week["complaints"], week["delivered"], week["complaint_rate"]) == (8, 2000, 0.004)
    assert (week["unsubscribe_rate"], week["complaint_flag"]) == (0.01, "pause")
    assert rows["spring"]["30d"] == week
    assert rows[""]["1d"]["refusals"] == {"EU-CONSENT-REQUIRED": 3}
    assert rows[""]["1d"]["complaint_rate"] is None
    assert rows[None]["7d"]["refusals"] == {"EU-CONSENT-REQUIRED": 3}
    assert rows[None]["7d"]["complaints"] == 8


def test_a_campaign_of_every_sender_as_a_table(operator):
    result = operator.run("stats", "--campaign", "spring")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["sender", "campaign", "window", "accepted"]
    assert [line.split()[:6] for line in lines[1:7]] == [
        ["acme", "spring", "1d", "1000", "1000", "1.00%"],
        ["acme", "spring", "7d", "1000", "2000", "1.00%"],
        ["acme", "spring", "30d", "1000", "2000", "1.00%"],
        ["globex", "spring", "1d", "10", "0", "0.00%"],
        ["globex", "spring", "7d", "10", "0", "0.00%"],
        ["globex", "spring", "30d", "10", "0", "0.00%"],
    ]
    assert [line.split()[-2:] for line in lines[1:4]] == [
        ["WARN", "-"],
        ["PAUSE", "-"],
        ["PAUSE", "-"],
    ]
    assert "warn at 0.1%, pause at 0.3% (MBP-COMPLAINT-RATE)" in result.stdout


def test_nothing_counted_yet(tmp_path):
    result = Operator(tmp_path).run("stats", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == []
