"""The audit log through the admin API of a running relay, over real HTTP: records found by
recipient, message, queue id, rule, sender, stage, action and time, a page at a time; the
export streamed as CSV or as stored (and the JSON Lines export of the whole log verifies with
`relay audit verify`); the chain checked, a record edited while relay was stopped named.

The mail comes from `mailed` (tests/api/story.py), which test_stats_api and test_report_page
read too."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from relay.audit.verify import CSV_COLUMNS
from tests.api.story import ANN, get, unsubscribe
from tests.support.relay_process import RelayProcess

ROUTES = ("/api/v1/audit/records", "/api/v1/audit/export", "/api/v1/audit/verify")


# -- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUTES)
def test_readers_may_read_the_audit_log_and_nobody_else(admin_api, path):
    for role, status in (("operator", 200), ("compliance", 200), ("mailer", 403), (None, 401)):
        with admin_api.as_role(role) as client:
            response = client.get(path)
        assert response.status_code == status, (role, response.text)
        if status != 200:
            assert response.json()["status"] == status


# -- records ----------------------------------------------------------------------------------


def test_records_are_found_by_every_filter(mailed):
    api, every = mailed.api, mailed.records()
    path = "/api/v1/audit/records"

    def found(**params: Any) -> list[int]:
        page = get(api, path, limit=1000, **params)
        assert page["next_cursor"] is None
        return [item["seq"] for item in page["items"]]

    def expected(keep: Callable[[dict[str, Any]], bool]) -> list[int]:
        return [record["seq"] for record in every if keep(record)]

    assert found() == expected(lambda r: True)
    ann = api.hasher.hash(ANN)
    assert found(recipient=ANN) == expected(lambda r: r["recipient_hash"] == ann)
    assert len(found(recipient=ANN)) >= 3  # data verdicts, the bounce's suppression, the refusal
    assert found(queue_id=mailed.queue_id) == expected(lambda r: r["queue_id"] == mailed.queue_id)
    by_message = found(message_id=mailed.message_id)
    assert by_message
    assert by_message == expected(lambda r: r["message_id"] == mailed.message_id)
    rule = mailed.refusing_rule(ANN)
    assert found(rule_id=rule) == expected(lambda r: r["rule_id"] == rule)
    assert found(stage="rcpt", action="reject") == expected(
        lambda r: (r["stage"], r["action"]) == ("rcpt", "reject")
    )
    assert found(stage="unsubscribe") == expected(lambda r: r["stage"] == "unsubscribe")
    assert len(found(stage="unsubscribe")) == 1
    assert found(sender_id="shop") == expected(lambda r: r["sender_id"] == "shop")
    assert found(sender_id="other") == []
    # Time: the second mailing's records are the ones from the unsubscribe on.
    (request,) = [r for r in every if r["stage"] == "unsubscribe"]
    assert found(since=request["time"]) == expected(lambda r: r["time"] >= request["time"])
    assert found(until=request["time"]) == expected(lambda r: r["time"] < request["time"])
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert found(since=future) == []


def test_records_come_a_page_at_a_time(mailed):
    api, every = mailed.api, mailed.records()
    assert len(every) > 7
    seen: list[dict[str, Any]] = []
    cursor = 0
    pages = 0
    while True:
        page = get(api, "/api/v1/audit/records", limit=3, cursor=cursor)
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        if page["next_cursor"] is None:
            break
        assert len(page["items"]) == 3
        cursor = page["next_cursor"]
        assert cursor == page["items"][-1]["seq"]
    assert seen == every  # every field as stored, in chain order
    assert pages == -(-len(every) // 3)
    # A filtered page's cursor skips the records that do not match.
    first = get(api, "/api/v1/audit/records", limit=1, stage="rcpt")
    second = get(api, "/api/v1/audit/records", limit=1, stage="rcpt", cursor=first["next_cursor"])
    rcpt = [r for r in every if r["stage"] == "rcpt"]
    assert [first["items"][0], second["items"][0]] == rcpt[:2]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"cursor": -1}, "query.cursor"),
        ({"since": "yesterday"}, "query.since"),
    ],
)
def test_bad_query_parameters_are_named(admin_api, params, field):
    with admin_api.as_role("operator") as client:
        response = client.get("/api/v1/audit/records", params=params)
    assert response.status_code == 422, response.text
    assert [item["field"] for item in response.json()["fields"]] == [field]


# -- export -----------------------------------------------------------------------------------


def test_jsonl_export_is_streamed_and_verifies_like_the_log(mailed, tmp_path):
    api = mailed.api
    with (
        api.as_role("compliance") as client,
        client.stream("GET", "/api/v1/audit/export", params={"format": "jsonl"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/jsonl")
        disposition = response.headers["content-disposition"]
        assert re.fullmatch(r'attachment; filename="audit-\d{8}T\d{6}Z\.jsonl"', disposition)
        assert "content-length" not in response.headers  # streamed, not built in memory
        assert response.headers["transfer-encoding"] == "chunked"
        body = b"".join(response.iter_bytes())
    log = b"".join(
        path.read_bytes()
        for path in sorted((mailed.relay.directory / "var" / "audit").glob("audit-*.jsonl"))
    )
    assert body == log
    copy = tmp_path / "exported"
    copy.mkdir()
    (copy / "audit-000001.jsonl").write_bytes(body)
    result = subprocess.run(
        [sys.executable, "-m", "relay", "audit", "verify", "--log-dir", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert f"audit log OK: {len(mailed.records())} records" in result.stdout


def test_csv_export_has_a_row_per_matching_record(mailed):
    every = mailed.records()
    with mailed.api.as_role("operator") as client:
        response = client.get(
            "/api/v1/audit/export", params={"format": "csv", "stage": "rcpt", "action": "reject"}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].endswith('.csv"')
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(header) == CSV_COLUMNS
    wanted = [r for r in every if (r["stage"], r["action"]) == ("rcpt", "reject")]
    assert [int(row[header.index("seq")]) for row in rows] == [r["seq"] for r in wanted]
    assert [row[header.index("rule_id")] for row in rows] == [r["rule_id"] for r in wanted]
    assert all(json.loads(row[header.index("inputs")]) is not None for row in rows)


def test_export_of_a_time_range(mailed):
    every = mailed.records()
    middle = every[len(every) // 2]["time"]
    with mailed.api.as_role("operator") as client:
        response = client.get("/api/v1/audit/export", params={"until": middle})
    assert response.status_code == 200, response.text
    seqs = [json.loads(line)["seq"] for line in response.text.splitlines()]
    assert seqs == [r["seq"] for r in every if r["time"] < middle]


# -- verify -----------------------------------------------------------------------------------


def audit_file(relay: RelayProcess) -> Path:
    (path,) = sorted((relay.directory / "var" / "audit").glob("audit-*.jsonl"))
    return path


def test_verify_reports_the_intact_chain_and_a_record_being_written(mailed):
    api, every = mailed.api, mailed.records()
    report = get(api, "/api/v1/audit/verify")
    assert report == {
        "ok": True,
        "records": len(every),
        "last_hash": every[-1]["hash"],
        "bad": None,
    }
    # A record relay is writing: the last line has no end of line yet. Not a break.
    path = audit_file(mailed.relay)
    size = path.stat().st_size
    with path.open("ab") as log:
        log.write(b'{"action":"accept","detail":"half wri')
    try:
        assert get(api, "/api/v1/audit/verify", role="operator") == report
        assert get(api, "/api/v1/audit/records", limit=1000)["items"] == every
    finally:
        with path.open("r+b") as log:
            log.truncate(size)


def test_verify_names_a_record_edited_while_relay_was_stopped(admin_api):
    relay = admin_api.relay
    for number in range(4):  # four audited one-click unsubscribes
        unsubscribe(relay, f"user{number}@example.us")
    relay.stop()
    path = audit_file(relay)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 4
    edited = json.loads(lines[1])
    edited["detail"] = "nothing happened here"
    lines[1] = json.dumps(edited, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    relay.start()
    report = get(admin_api, "/api/v1/audit/verify")
    assert report["ok"] is False
    assert report["records"] == 1
    assert report["last_hash"] == json.loads(lines[0])["hash"]
    assert report["bad"] == {
        "file": path.name,
        "line": 2,
        "seq": 2,
        "problem": "content does not match its hash (record edited)",
    }
