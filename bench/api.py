"""Admin API benchmark: suppression lookup and add latency (p50/p99) over real HTTP, and the
streamed export of a large audit log with relay's resident memory sampled during the export.

The script writes an audit log of --audit-records records (through relay's own AuditLog, in
batches), stores --suppressions suppressions and an operator token, starts
`python -m relay serve` on loopback in a temporary directory, and then measures with one
keep-alive httpx client:

    lookup   GET  /api/v1/suppressions/lookup   (half the addresses suppressed)
    add      POST /api/v1/suppressions          (each audited and fsync'd before the answer)
    export   GET  /api/v1/audit/export?format=jsonl, rows/s, RSS before / peak / after

    .venv/bin/python bench/api.py                      # 1,000,000 audit records
    .venv/bin/python bench/api.py --audit-records 100000 --requests 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from relay.api.auth import new_token
from relay.audit.log import AuditLog
from relay.audit.records import AuditEvent
from relay.stores.hashing import AddressHasher, load_or_create_key
from relay.stores.models import ApiRole, SuppressionEntry, SuppressionReason, SuppressionScope
from relay.stores.sqlite import SqliteStores

sys.path.insert(0, str(Path(__file__).resolve().parent))  # throughput.py: the RSS poller
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's port helpers
from tests.support.network import free_port, wait_for_port

from throughput import RssPoller, percentile

SENDER_ID = "bench"
MIB = 1024 * 1024


def address(number: int) -> str:
    return f"user{number}@bench-recipient.test"


async def write_audit_log(directory: Path, records: int) -> None:
    audit = AuditLog(directory, node="bench")
    await audit.open()
    now = datetime.now(UTC).isoformat()
    batch = 10_000
    try:
        for start in range(0, records, batch):
            await audit.append(
                [
                    AuditEvent(
                        time=now,
                        stage="rcpt",
                        action="accept" if n % 10 else "reject",
                        mail_from="news@bench.test",
                        recipient_hash=f"{n:064x}",
                        recipient=address(n),
                        rule_id=None if n % 10 else "EU-CONSENT-REQUIRED",
                        sender_id=SENDER_ID,
                        relay_version="bench",
                    )
                    for n in range(start, min(start + batch, records))
                ]
            )
    finally:
        await audit.close()


async def prepare_stores(state: Path, suppressions: int) -> str:
    hasher = AddressHasher(load_or_create_key(state / "keys" / "address-hmac.key"))
    now = datetime.now(UTC)
    token, stored = new_token("bench", ApiRole.OPERATOR, None, now)
    async with SqliteStores(state / "stores.sqlite", hasher, True) as stores:
        await stores.add_api_token(stored)
        await stores.add_suppressions(
            SuppressionEntry(
                address_hash=hasher.hash(address(n)),
                sender_id=SENDER_ID,
                scope=SuppressionScope.SENDER,
                reason=SuppressionReason.MANUAL,
                source="bench",
                received_at=now,
                address=address(n),
            )
            for n in range(0, suppressions * 2, 2)  # even numbers: half of the lookups hit
        )
    return token


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
    return f"p50 {p50 * 1000:.2f} ms  p99 {p99 * 1000:.2f} ms  ({len(ordered)} requests)"


def timed(client: httpx.Client, method: str, url: str, **kwargs: Any) -> float:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    elapsed = time.perf_counter() - started
    if response.status_code >= 300:
        raise SystemExit(f"{method} {url}: {response.status_code} {response.text[:300]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audit-records", type=int, default=1_000_000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="relay-bench-api-") as temp:
        directory = Path(temp)
        state = directory / "var"
        started = time.perf_counter()
        asyncio.run(write_audit_log(state / "audit", args.audit_records))
        token = asyncio.run(prepare_stores(state, args.suppressions))
        print(
            f"prepared {args.audit_records:,} audit records and {args.suppressions:,}"
            f" suppressions in {time.perf_counter() - started:.1f}s"
        )
        http_port = free_port()
        config = {
            "state_dir": str(state),
            "policy": {"files": []},
            "smtp": {"listen": f"127.0.0.1:{free_port()}", "hostname": "relay.bench"},
            "feedback": {"listen": f"127.0.0.1:{free_port()}"},
            "http": {"listen": f"127.0.0.1:{http_port}"},
        }
        (directory / "relay.toml").write_text(tomli_w.dumps(config))
        log = directory / "relay.log"
        with open(log, "wb") as output:
            relay = subprocess.Popen(
                [sys.executable, "-m", "relay", "serve", "--config", str(directory / "relay.toml")],
                cwd=directory,
                stdout=output,
                stderr=output,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:
            if not wait_for_port("127.0.0.1", http_port, timeout=60):
                raise SystemExit(f"relay did not start:\n{log.read_text()[-3000:]}")
            measure(f"http://127.0.0.1:{http_port}", token, relay.pid, args)
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=30)


def measure(url: str, token: str, pid: int, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=600) as client:
        lookups = [
            timed(
                client,
                "GET",
                "/api/v1/suppressions/lookup",
                params={
                    "address": address(n * 7919 % (args.suppressions * 2)),
                    "sender_id": SENDER_ID,
                },
            )
            for n in range(args.requests)
        ]
        print(f"suppression lookup: {percentiles(lookups)}")
        adds = [
            timed(
                client,
                "POST",
                "/api/v1/suppressions",
                json={"address": f"new{n}@bench-recipient.test", "sender_id": SENDER_ID},
            )
            for n in range(args.requests)
        ]
        print(f"suppression add:    {percentiles(adds)}")
        export(client, pid)


def export(client: httpx.Client, pid: int) -> None:
    rss = RssPoller(pid).start()
    rows = size = 0
    started = time.perf_counter()
    with client.stream("GET", "/api/v1/audit/export", params={"format": "jsonl"}) as response:
        if response.status_code != 200:
            raise SystemExit(f"export: {response.status_code} {response.read()[:300]!r}")
        for chunk in response.iter_bytes():
            rows += chunk.count(b"\n")
            size += len(chunk)
    elapsed = time.perf_counter() - started
    rss.stop()
    print(
        f"audit export (jsonl): {rows:,} rows, {size / MIB:.0f} MiB in {elapsed:.1f}s ="
        f" {rows / elapsed:,.0f} rows/s; relay RSS before {rss.first / MIB:.0f} MiB,"
        f" peak {rss.peak / MIB:.0f} MiB, after {rss.sample() / MIB:.0f} MiB"
    )


if __name__ == "__main__":
    main()
