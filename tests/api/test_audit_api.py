"""The audit log through the admin API of a running relay, over real HTTP: records found by
recipient, message, queue id, rule, sender, stage, action and time, a page at a time; the
export streamed as CSV or as stored (and the JSON Lines export of the whole log verifies with
`relay audit verify`); the chain checked, a record edited while relay was stopped named.

The mail comes from `mailed`: the shop sends its campaign to ann (the destination refuses her
for good), bob, carl and dan (deferred for now); bob unsubscribes with the one-click POST; the
shop's next mailing to ann and bob is refused at RCPT. test_stats_api and test_report_page
read the same story."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from relay.audit.verify import CSV_COLUMNS
from tests.api.admin import AdminApi, start_admin_api
from tests.policy.builders import message
from tests.scenarios.compliance import (
    EGRESS,
    SHOP_DOMAIN,
    ShopDomain,
    add_shop_sender,
    audit_records,
    policy_config,
    submit,
)
from tests.scenarios.test_feedback_becomes_suppression import keys
from tests.signing.conftest import keygen
from tests.support.dns_server import DnsServer, txt
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess, merge

ANN, BOB, CARL, DAN = (f"{name}@example.us" for name in ("ann", "bob", "carl", "dan"))
CAMPAIGN = "spring-sale"
QUEUED = re.compile(r"Queued as ([0-9A-F]+)")
ROUTES = ("/api/v1/audit/records", "/api/v1/audit/export", "/api/v1/audit/verify")


@dataclass
class Mailed:
    """The story's relay, its admin API, and what the story produced."""

    api: AdminApi
    queue_id: str
    message_id: str

    @property
    def relay(self) -> RelayProcess:
        return self.api.relay

    def records(self) -> list[dict[str, Any]]:
        return audit_records(self.relay)

    def refusing_rule(self, address: str) -> str:
        """The rule whose reply refused `address` (at the second mailing)."""
        hashed = self.api.hasher.hash(address)
        (rule,) = [
            record["rule_id"]
            for record in self.records()
            if record["recipient_hash"] == hashed
            and record["stage"] == "rcpt"
            and record["reply"] is not None
        ]
        return str(rule)


def unsubscribe(relay: RelayProcess, address: str, list_id: str | None = None) -> None:
    tokens, hasher = keys(relay)
    token = tokens.issue(
        sender_id="shop", list_id=list_id, address_hash=hasher.hash(address), issued=date.today()
    )
    answer = httpx.post(
        f"{relay.http_url}/u/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10
    )
    assert answer.status_code == 200, answer.text


# One ShopDomain per DNS server (session): test_stats_api and test_report_page import the
# fixture too, which makes it a fixture of theirs as well, each run once per session.
_SHOP_DOMAINS: dict[int, ShopDomain] = {}


@pytest.fixture(scope="session")
def shop_domain(tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer) -> ShopDomain:
    """shop.example ready to send through relay, as tests/scenarios' `shop` makes it, with keys
    of their own selectors (both may be published in one session: the DNS server is shared and
    drops the records both publish twice)."""
    known = _SHOP_DOMAINS.get(id(dns_server))
    if known is not None:
        return known
    directory = tmp_path_factory.mktemp("api-shop") / "keys"
    rsa = keygen(directory, SHOP_DOMAIN, "api2026")
    ed25519 = keygen(directory, SHOP_DOMAIN, "apie2026", "--algorithm", "ed25519-sha256")
    dns_server.add(
        f"{SHOP_DOMAIN}. IN MX 10 mx.{SHOP_DOMAIN}.",
        f"mx.{SHOP_DOMAIN}. IN A 127.0.0.1",
        txt(SHOP_DOMAIN, f"v=spf1 ip4:{EGRESS} -all"),
        txt(f"_dmarc.{SHOP_DOMAIN}", "v=DMARC1; p=reject"),
        txt(rsa.record_name, rsa.record_value),
        txt(ed25519.record_name, ed25519.record_value),
    )
    return _SHOP_DOMAINS.setdefault(id(dns_server), ShopDomain(rsa, ed25519))


@pytest.fixture
def mailed(make_relay: Callable[..., RelayProcess], shop_domain: ShopDomain, sink) -> Mailed:
    config = merge(policy_config(sink, shop_domain), {"delivery": {"retry_schedule": ["1h"]}})
    api = start_admin_api(make_relay(config))
    add_shop_sender(api.relay)
    sink.rcpt_replies[ANN].append("550 5.1.1 <ann@example.us>: no such user")
    sink.rcpt_replies[DAN].append("450 4.2.0 <dan@example.us>: try again later")
    message_id = "<spring-1@shop.example>"
    content = message({"X-Relay-Campaign": CAMPAIGN, "Message-ID": message_id})
    replies, data = submit(api.relay, [ANN, BOB, CARL, DAN], content)
    assert all(code == 250 for code, _ in replies.values()), replies
    assert data is not None
    assert data[0] == 250, data
    queued = QUEUED.search(data[1])
    assert queued, data
    sink.wait_for(2)  # bob and carl
    ann = api.hasher.hash(ANN)
    suppressed = poll(
        lambda: (
            any(
                (r["stage"], r["action"], r["recipient_hash"]) == ("queue", "suppress", ann)
                for r in audit_records(api.relay)
            )
            or None
        ),
        timeout=20,
    )
    assert suppressed, api.relay.log
    api.relay.wait_for_log(f"to=<{DAN}> relay=")
    unsubscribe(api.relay, BOB)
    replies, data = submit(api.relay, [ANN, BOB], content)
    assert {address: code for address, (code, _) in replies.items()} == {ANN: 550, BOB: 550}
    return Mailed(api, queued.group(1), message_id)


def get(api: AdminApi, path: str, role: str = "compliance", **params: Any) -> Any:
    with api.as_role(role) as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


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
