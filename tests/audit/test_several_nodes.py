"""Two nodes' audit logs handled together, as a compliance officer does with `relay audit
export|verify --log-dir A --log-dir B` (run as a subprocess): the export interleaves both logs by
time, every record once with its node's name, --since/--until cutting across both; verify checks
each log and reports each, a broken one naming its file and line without hiding the other."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from relay.audit.log import AuditLog, audit_files
from relay.audit.records import AuditEvent
from relay.audit.verify import CSV_COLUMNS

START = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
# Which node decided at minute 0, 1, 2, ...: uneven runs, so that neither one log after the
# other nor taking them in turns gives time order.
SCHEDULE = "AABABBBAAAABABBABBBBAAB"


def moment(minute: int) -> datetime:
    return START + timedelta(minutes=minute)


def event(minute: int) -> AuditEvent:
    return AuditEvent(
        time=moment(minute).isoformat(),
        stage="rcpt",
        action="accept" if minute % 3 else "reject",
        mail_from="news@sender.example",
        recipient_hash=f"h-{minute}",
        recipient=f"user{minute}@example.org",
        rule_id="US-OPTOUT-PRESENT",
        inputs={"minute": minute},
        relay_version="0.1.0",
    )


def relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stored(directory: Path) -> list[str]:
    """The log's lines as stored (without end of line), in chain order."""
    return [line for path in audit_files(directory) for line in path.read_text().splitlines()]


@pytest.fixture
def logs(tmp_path: Path) -> tuple[Path, Path]:
    """Node mx-east's log in copy-1 and node mx-west's in copy-2 (directory names that are not
    the nodes' names), both open at once and appended to as SCHEDULE says."""
    east, west = tmp_path / "copy-1", tmp_path / "copy-2"

    async def run() -> None:
        nodes = {"A": AuditLog(east, node="mx-east"), "B": AuditLog(west, node="mx-west")}
        for log in nodes.values():
            await log.open()
        try:
            for minute, node in enumerate(SCHEDULE):
                await nodes[node].append([event(minute)])
        finally:
            for log in nodes.values():
                await log.close()

    asyncio.run(run())
    return east, west


def expected_order(*directories: Path) -> list[dict[str, object]]:
    """Every stored record of `directories`, by time (SCHEDULE has no two at the same minute)."""
    records = [json.loads(line) for directory in directories for line in stored(directory)]
    return sorted(records, key=lambda record: datetime.fromisoformat(str(record["time"])))


def test_the_logs_are_written_as_scheduled(logs: tuple[Path, Path]) -> None:
    """What the other tests rest on: each node's log holds its minutes, under its name."""
    east, west = logs
    for directory, node, letter in ((east, "mx-east", "A"), (west, "mx-west", "B")):
        records = [json.loads(line) for line in stored(directory)]
        minutes = [m for m, n in enumerate(SCHEDULE) if n == letter]
        assert [r["inputs"]["minute"] for r in records] == minutes
        assert [r["seq"] for r in records] == list(range(1, len(minutes) + 1))
        assert {r["node"] for r in records} == {node}


def test_jsonl_export_interleaves_both_logs_by_time(logs: tuple[Path, Path]) -> None:
    east, west = logs
    result = relay("export", "--log-dir", str(east), "--log-dir", str(west), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    # Each record as stored, byte for byte, every one of both logs once, in time order.
    every = stored(east) + stored(west)
    assert len(every) == len(SCHEDULE)
    assert sorted(lines) == sorted(every)  # the records are distinct: each once
    records = [json.loads(line) for line in lines]
    # Record `minute` was decided at START + minute: in time order, minute after minute.
    assert [r["inputs"]["minute"] for r in records] == list(range(len(SCHEDULE)))
    # Each record keeps the name of the node that decided it.
    letters = {"mx-east": "A", "mx-west": "B"}
    assert "".join(letters[r["node"]] for r in records) == SCHEDULE
    # Picking one node's records out of the export gives back that node's log as it is stored.
    assert [line for line, r in zip(lines, records, strict=True) if r["node"] == "mx-west"] == (
        stored(west)
    )
    assert result.stderr.strip() == f"exported {len(SCHEDULE)} records"

    # The order of --log-dir does not change the merge.
    swapped = relay("export", "--log-dir", str(west), "--log-dir", str(east), "--format", "jsonl")
    assert swapped.returncode == 0, swapped.stderr
    assert swapped.stdout == result.stdout


def test_csv_export_interleaves_both_logs_by_time(logs: tuple[Path, Path], tmp_path: Path) -> None:
    east, west = logs
    out = tmp_path / "export.csv"
    result = relay(
        "export", "--log-dir", str(east), "--log-dir", str(west), "--format", "csv",
        "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    with open(out, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert tuple(header) == CSV_COLUMNS
    expected = expected_order(east, west)
    assert len(rows) == len(expected) == len(SCHEDULE)
    for row, record in zip(rows, expected, strict=True):
        values = dict(zip(CSV_COLUMNS, row, strict=True))
        assert (values["node"], values["seq"], values["time"], values["hash"]) == (
            record["node"],
            str(record["seq"]),
            record["time"],
            record["hash"],
        )
        assert json.loads(values["inputs"]) == record["inputs"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_since_and_until_cut_across_both_logs(logs: tuple[Path, Path], fmt: str) -> None:
    east, west = logs
    # From minute 4 (mx-west's record, included) up to minute 15 (mx-east's, left out): the
    # bounds fall on records of different nodes.
    since, until = 4, 15
    assert (SCHEDULE[since], SCHEDULE[until]) == ("B", "A")
    result = relay(
        "export", "--log-dir", str(east), "--log-dir", str(west), "--format", fmt,
        "--since", moment(since).strftime("%Y-%m-%dT%H:%M:%SZ"),  # an aware time
        "--until", moment(until).strftime("%Y-%m-%dT%H:%M:%S"),  # a naive one: UTC
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    wanted = [r for r in expected_order(east, west) if since <= r["inputs"]["minute"] < until]
    assert len(wanted) == until - since
    assert {r["node"] for r in wanted} == {"mx-east", "mx-west"}
    if fmt == "jsonl":
        got = [json.loads(line) for line in result.stdout.splitlines()]
        assert got == wanted
    else:
        got_rows = list(csv.DictReader(result.stdout.splitlines()))
        assert [(row["node"], row["seq"], row["hash"]) for row in got_rows] == [
            (r["node"], str(r["seq"]), r["hash"]) for r in wanted
        ]
    assert result.stderr.strip() == f"exported {until - since} records"


def test_a_directory_named_twice_is_exported_once(logs: tuple[Path, Path]) -> None:
    east, west = logs
    twice = relay(
        "export", "--log-dir", str(east), "--log-dir", str(west), "--log-dir", str(east / "."),
        "--format", "jsonl",
    )  # fmt: skip
    assert twice.returncode == 0, twice.stderr
    assert sorted(twice.stdout.splitlines()) == sorted(stored(east) + stored(west))


def tamper(path: Path, line: int) -> None:
    """Change one byte of the recipient of the record on `line` (1-based)."""
    lines = path.read_bytes().splitlines(True)
    assert b'"recipient":"user' in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(b'"recipient":"user', b'"recipient":"usEr', 1)
    path.write_bytes(b"".join(lines))


def test_verify_reports_each_log(logs: tuple[Path, Path]) -> None:
    east, west = logs
    count_east, count_west = SCHEDULE.count("A"), SCHEDULE.count("B")
    ok_east = f"audit log OK: {count_east} records in {east}"
    ok_west = f"audit log OK: {count_west} records in {west}"

    ok = relay("verify", "--log-dir", str(east), "--log-dir", str(west))
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.splitlines() == [ok_east, ok_west]

    (west_file,) = audit_files(west)
    tamper(west_file, 5)
    broken_at = f"{west_file}:5: record seq 5: content does not match its hash (record edited)"
    # Whichever comes first, the broken log is named and the intact one still checked.
    for order in ((east, west), (west, east)):
        args = [arg for directory in order for arg in ("--log-dir", str(directory))]
        result = relay("verify", *args)
        assert result.returncode == 1, result
        assert result.stderr.splitlines() == [broken_at]
        assert result.stdout.splitlines() == [ok_east]

    # Both broken: both named, nothing OK.
    (east_file,) = audit_files(east)
    tamper(east_file, 2)
    both = relay("verify", "--log-dir", str(west), "--log-dir", str(east))
    assert both.returncode == 1, both
    assert both.stderr.splitlines() == [
        broken_at,
        f"{east_file}:2: record seq 2: content does not match its hash (record edited)",
    ]
    assert both.stdout == ""


def test_verify_goes_on_past_a_log_that_is_not_there(logs: tuple[Path, Path]) -> None:
    east, west = logs
    missing = east.parent / "copy-3"
    result = relay("verify", "--log-dir", str(missing), "--log-dir", str(west))
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [f"relay: {missing}: no audit log there (not a directory)"]
    assert result.stdout.splitlines() == [f"audit log OK: {SCHEDULE.count('B')} records in {west}"]
