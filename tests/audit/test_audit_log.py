"""The audit log on real files: concurrent appends form one complete chain; every kind of
tampering is caught by `relay audit verify` (run as an operator runs it) at the right record;
restarts continue the chain; exports filter by time; a broken tail is never appended to."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import tomli_w

from relay.audit.log import GENESIS, AuditLog, audit_files, canonical_json, record_hash
from relay.audit.records import AuditEvent
from relay.audit.verify import CSV_COLUMNS, export, verify
from relay.errors import AuditError

RELAY = [sys.executable, "-m", "relay"]


def event(session: int, index: int, hour: int = 10) -> AuditEvent:
    return AuditEvent(
        time=f"2024-05-01T{hour:02d}:00:{index % 60:02d}+00:00",
        stage="rcpt",
        action="accept" if index % 2 else "reject",
        mail_from="news@sender.example",
        recipient_hash=f"h-{session}-{index}",
        recipient=f"user{session}.{index}@example.org",
        message_id=f"<m{session}.{index}@sender.example>",
        rule_id="US-OPTOUT-PRESENT",
        citation="15 U.S.C. §7704(a)(3)",
        inputs={"session": session, "index": index, "header": "List-Unsubscribe: <mailto:u@x>"},
        relay_version="0.1.0",
    )


def bare_event(stage: str, action: str, inputs: dict[str, object]) -> AuditEvent:
    """An event with only the fields every record has, and `inputs`."""
    return AuditEvent(
        time="2024-05-01T10:00:00+00:00",
        stage=stage,
        action=action,
        mail_from="a@b.example",
        recipient_hash="h",
        inputs=inputs,
    )


def append_all(
    directory: Path, sessions: Sequence[Sequence[Sequence[AuditEvent]]], **kwargs: int
) -> list[tuple[AuditEvent, str]]:
    """Open the log and run the sessions concurrently, each appending its batches in turn; each
    event with the record hash its append returned."""
    appended: list[tuple[AuditEvent, str]] = []

    async def session(log: AuditLog, batches: Sequence[Sequence[AuditEvent]]) -> None:
        for batch in batches:
            appended.extend(zip(batch, await log.append(batch), strict=True))

    async def run() -> None:
        log = AuditLog(directory, node="node-a", **kwargs)
        await log.open()
        try:
            await asyncio.gather(*(session(log, batches) for batches in sessions))
        finally:
            await log.close()

    asyncio.run(run())
    return appended


def stored_lines(directory: Path) -> list[bytes]:
    return [line for path in audit_files(directory) for line in path.read_bytes().splitlines(True)]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "relay.toml"
    path.write_text(tomli_w.dumps({"state_dir": str(tmp_path)}))
    return path


def relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RELAY, *args], capture_output=True, text=True, timeout=60, check=False)


def assert_verify_fails(config: Path, where: str) -> str:
    result = relay("audit", "verify", "--config", str(config))
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert where in result.stderr, result.stderr
    return result.stderr


def test_concurrent_appends_form_one_complete_chain(tmp_path: Path, config: Path) -> None:
    directory = tmp_path / "audit"
    # 100 sessions racing, each appending 1, 2, 3, ... records at a time, 12 records in all;
    # small files so that the chain crosses files.
    sessions = [
        [
            [event(s, i) for i in range(start, start + n)]
            for start, n in ((0, 1), (1, 2), (3, 3), (6, 6))
        ]
        for s in range(100)
    ]
    appended = append_all(directory, sessions, max_file_size=50_000)

    result = verify(directory)
    assert result.ok, result.bad
    assert result.records == 1200
    assert len(audit_files(directory)) > 1

    records = [json.loads(line) for line in stored_lines(directory)]
    assert [record["seq"] for record in records] == list(range(1, 1201))
    assert records[0]["prev"] == GENESIS
    assert {record["node"] for record in records} == {"node-a"}
    assert result.last_hash == records[-1]["hash"] == record_hash(records[-1])
    # append returns the hash of each record it wrote: what names a record for good.
    stored = {(r["inputs"]["session"], r["inputs"]["index"]): r["hash"] for r in records}
    returned = {(e.inputs["session"], e.inputs["index"]): ref for e, ref in appended}
    assert returned == stored
    # Every record once; each session's records in its order, each append's records together.
    keys = [(record["inputs"]["session"], record["inputs"]["index"]) for record in records]
    assert sorted(keys) == [(s, i) for s in range(100) for i in range(12)]
    for session in range(100):
        positions = [n for n, key in enumerate(keys) if key[0] == session]
        assert [keys[n][1] for n in positions] == list(range(12))
        for first, last in ((1, 2), (3, 5), (6, 11)):
            assert positions[last] - positions[first] == last - first
    # The stored fields are the event's, unchanged.
    first = next(r for r in records if r["inputs"] == event(5, 2).inputs)
    assert {k: first[k] for k in event(5, 2).as_dict()} == event(5, 2).as_dict()

    ok = relay("audit", "verify", "--config", str(config))
    assert ok.returncode == 0, ok
    assert ok.stdout.strip() == f"audit log OK: 1200 records in {directory}"


def _edit(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[11])
    record["action"] = "accept" if record["action"] == "reject" else "reject"
    return [*lines[:11], canonical_json(record).encode() + b"\n", *lines[12:]]


def _forge(lines: list[bytes]) -> list[bytes]:
    """Edit a record and give it a matching hash: the next record's prev no longer matches."""
    record = json.loads(lines[11])
    record["recipient"] = "someone.else@example.org"
    record["hash"] = record_hash(record)
    return [*lines[:11], canonical_json(record).encode() + b"\n", *lines[12:]]


def _reformat(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[11])
    return [*lines[:11], json.dumps(record).encode() + b"\n", *lines[12:]]


@pytest.mark.parametrize(
    ("tamper", "where"),
    [
        pytest.param(
            _edit, "audit-000001.jsonl:12: record seq 12: content does not match", id="edit"
        ),
        pytest.param(_forge, "audit-000001.jsonl:13: record seq 13: prev is not", id="forge"),
        pytest.param(_reformat, "audit-000001.jsonl:12: record seq 12: line is not", id="reformat"),
        pytest.param(
            lambda lines: lines[:11] + lines[12:],
            "audit-000001.jsonl:12: record seq 13: expected seq 12",
            id="delete",
        ),
        pytest.param(
            lambda lines: [*lines[:11], lines[12], lines[11], *lines[13:]],
            "audit-000001.jsonl:12: record seq 13: expected seq 12",
            id="swap",
        ),
        pytest.param(
            lambda lines: lines[1:],
            "audit-000001.jsonl:1: record seq 2: expected seq 1",
            id="delete-first",
        ),
        pytest.param(
            lambda lines: [*lines[:-1], lines[-1][: len(lines[-1]) // 2]],
            "audit-000001.jsonl:30: record seq 30: record cut short",
            id="truncate-last",
        ),
        pytest.param(
            lambda lines: [*lines[:-1], lines[-1][: len(lines[-1]) // 2] + b"\n"],
            "audit-000001.jsonl:30: record seq 30: not valid JSON",
            id="truncate-last-with-newline",
        ),
    ],
)
def test_verify_names_the_first_bad_record(
    tmp_path: Path, config: Path, tamper: Callable[[list[bytes]], list[bytes]], where: str
) -> None:
    directory = tmp_path / "audit"
    append_all(directory, [[[event(0, i) for i in range(30)]]])
    path = directory / "audit-000001.jsonl"
    path.write_bytes(b"".join(tamper(path.read_bytes().splitlines(True))))

    assert_verify_fails(config, f"{directory}/{where}")
    assert not verify(directory).ok


def test_tampering_in_a_later_file_is_located_in_that_file(tmp_path: Path, config: Path) -> None:
    directory = tmp_path / "audit"
    append_all(directory, [[[event(0, i)] for i in range(40)]], max_file_size=3_000)
    files = audit_files(directory)
    assert len(files) >= 3
    second = files[1].read_bytes().splitlines(True)
    first_seq = json.loads(second[0])["seq"]
    files[1].write_bytes(b"".join([second[0], *second[2:]]))  # delete its second line

    result = verify(directory)
    assert result.bad is not None
    assert (result.bad.path, result.bad.line, result.bad.seq) == (files[1], 2, first_seq + 2)
    assert_verify_fails(config, f"{files[1]}:2: record seq {first_seq + 2}: expected seq")

    files[1].unlink()  # a whole file gone: the next file does not continue the chain
    assert_verify_fails(config, f"{files[2]}:1: record seq")


def test_restart_continues_the_chain(tmp_path: Path, config: Path) -> None:
    directory = tmp_path / "audit"
    append_all(directory, [[[event(0, i)] for i in range(10)]])
    append_all(directory, [[[event(1, i)] for i in range(10)]])
    append_all(directory, [[[event(2, i)] for i in range(10)]], max_file_size=1)  # new file each

    result = verify(directory)
    assert result.ok, result.bad
    assert result.records == 30
    records = [json.loads(line) for line in stored_lines(directory)]
    assert [record["seq"] for record in records] == list(range(1, 31))
    assert records[10]["prev"] == records[9]["hash"]
    ok = relay("audit", "verify", "--config", str(config))
    assert (ok.returncode, ok.stdout.strip()) == (0, f"audit log OK: 30 records in {directory}")


def test_restart_after_a_record_larger_than_the_tail_block(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    big = bare_event("data", "warn", {"body": "\u00e9\n" * 100_000})
    append_all(directory, [[[event(0, 0)], [big]]])
    append_all(directory, [[[event(0, 1)]]])
    result = verify(directory)
    assert (result.ok, result.records) == (True, 3)


def test_append_after_a_broken_tail_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    append_all(directory, [[[event(0, i) for i in range(5)]]])
    path = directory / "audit-000001.jsonl"
    good = path.read_bytes()
    lines = good.splitlines(True)

    path.write_bytes(b"".join([*lines[:-1], lines[-1][:40]]))
    with pytest.raises(AuditError, match="cut short"):
        append_all(directory, [[[event(1, 0)]]])

    record = json.loads(lines[-1])
    record["rule_id"] = "NOTHING"
    path.write_bytes(b"".join([*lines[:-1], canonical_json(record).encode() + b"\n"]))
    with pytest.raises(AuditError, match=r"seq 5\) does not match its hash"):
        append_all(directory, [[[event(1, 0)]]])
    assert path.read_bytes().count(b"\n") == 5  # nothing was appended

    path.write_bytes(good)
    append_all(directory, [[[event(1, 0)]]])
    assert verify(directory).records == 6


def test_one_process_per_log_and_no_append_when_closed(tmp_path: Path) -> None:
    async def run() -> None:
        log = AuditLog(tmp_path / "audit")
        with pytest.raises(AuditError, match="not open"):
            await log.append([event(0, 0)])
        await log.open()
        other = AuditLog(tmp_path / "audit")
        with pytest.raises(AuditError, match="another process"):
            await other.open()
        await other.close()
        await log.append([event(0, 0)])
        assert log.last_seq == 1
        await log.close()
        with pytest.raises(AuditError, match="not open"):
            await log.append([event(0, 1)])

    asyncio.run(run())


def test_a_record_that_cannot_be_encoded_fails_alone(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    bad = bare_event("rcpt", "accept", {"not json": {1, 2}})

    async def run() -> list[BaseException | list[str]]:
        log = AuditLog(directory)
        await log.open()
        results = await asyncio.gather(
            log.append([event(0, 0)]),
            log.append([event(0, 1), bad]),
            log.append([event(0, 2)]),
            return_exceptions=True,
        )
        await log.close()
        return list(results)

    results = asyncio.run(run())
    assert isinstance(results[1], AuditError)
    assert "cannot encode" in str(results[1])
    result = verify(directory)
    assert (result.ok, result.records) == (True, 2)  # neither record of the failed append
    hashes = [json.loads(line)["hash"] for line in stored_lines(directory)]
    assert [results[0], results[2]] == [[hashes[0]], [hashes[1]]]


def test_export_filters_by_time(tmp_path: Path, config: Path) -> None:
    directory = tmp_path / "audit"
    append_all(directory, [[[event(0, i, hour=8 + i % 6)] for i in range(24)]])
    stored = stored_lines(directory)

    out = tmp_path / "export.csv"
    result = relay(
        "audit", "export", "--config", str(config), "--format", "csv",
        "--since", "2024-05-01T11:00:00Z", "--until", "2024-05-01T13:00:00", "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result
    with open(out, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = [json.loads(line) for line in stored]
    expected = [r for r in expected if "T11:" in r["time"] or "T12:" in r["time"]]
    assert len(rows) - 1 == len(expected) == 8
    for row, record in zip(rows[1:], expected, strict=True):
        values = dict(zip(CSV_COLUMNS, row, strict=True))
        assert values["seq"] == str(record["seq"])
        assert values["hash"] == record["hash"]
        assert values["citation"] == "15 U.S.C. §7704(a)(3)"
        assert values["queue_id"] == ""
        assert json.loads(values["inputs"]) == record["inputs"]

    result = relay(
        "audit", "export", "--config", str(config), "--format", "jsonl", "--since", "2024-05-01T12",
    )  # fmt: skip
    assert result.returncode == 0, result
    exported = result.stdout.encode().splitlines(True)
    assert exported == [line for line in stored if b"T12:" in line or b"T13:" in line]

    # An export of the whole log is itself a verifiable log.
    whole = relay("audit", "export", "--config", str(config), "--format", "jsonl")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "audit-000001.jsonl").write_text(whole.stdout, encoding="utf-8")
    assert whole.stdout.encode() == b"".join(stored)
    assert verify(copy).records == 24

    bad = relay("audit", "export", "--config", str(config), "--format", "csv", "--since", "soon")
    assert bad.returncode == 2
    assert "not an ISO 8601" in bad.stderr


def test_export_merges_the_logs_of_several_nodes(tmp_path: Path) -> None:
    async def write(directory: Path, node: str, hours: range) -> None:
        log = AuditLog(directory, node=node)
        await log.open()
        for hour in hours:
            await log.append([event(hour, 0, hour=hour)])
        await log.close()

    asyncio.run(write(tmp_path / "a", "node-a", range(0, 24, 2)))
    asyncio.run(write(tmp_path / "b", "node-b", range(1, 24, 2)))
    out = io.StringIO()
    count = export([tmp_path / "a", tmp_path / "b"], None, None, "jsonl", out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert count == len(records) == 24
    assert [r["inputs"]["session"] for r in records] == list(range(24))
    assert [r["node"] for r in records[:4]] == ["node-a", "node-b", "node-a", "node-b"]


def test_verify_without_a_log_is_a_clear_error(tmp_path: Path, config: Path) -> None:
    result = relay("audit", "verify", "--config", str(config))
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"relay: {tmp_path / 'audit'}: no audit log there (not a directory)"
    )
    assert "Traceback" not in result.stderr


def test_csv_export_does_not_let_a_header_value_become_a_formula(tmp_path: Path) -> None:
    hostile = event(1, 1).updated(detail='=HYPERLINK("http://evil.test","x")', mail_from="+1@x")
    append_all(tmp_path / "var" / "audit", [[[hostile]]])
    out = io.StringIO()
    export(tmp_path / "var" / "audit", None, None, "csv", out)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["detail"] == '\'=HYPERLINK("http://evil.test","x")'
    assert row["mail_from"] == "'+1@x"
    jsonl = io.StringIO()
    export(tmp_path / "var" / "audit", None, None, "jsonl", jsonl)
    assert json.loads(jsonl.getvalue())["detail"].startswith("=HYPERLINK")
