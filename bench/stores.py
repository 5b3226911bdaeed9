"""Stores benchmark: the SQLite and the Redis backend of relay.stores side by side (suppression
lookups, batch and single writes, consent lookups, memory), then accepted messages/s of one
relay node on Redis against two nodes sharing that Redis.

Part 1 runs in this process: a SqliteStores file and a RedisStores on a redis-server of its own
(loopback, no persistence, no maxmemory), both keyed by one HMAC key, get --entries suppression
entries (add_suppressions, --batch per call), then the same random mix of present and absent
recipients is looked up on each (suppression_for, then consents_for), single entries are added
one call each as the admin API does, and the sizes are read (file size, INFO memory).

Part 2 starts `python -m relay serve` nodes ([stores] backend = "redis" on the same
redis-server, key prefix and HMAC key file, so they see the loaded entries) with bench/
throughput.py's sink, NSD fixture and clients: first one node with all --concurrency
connections, then two nodes with the connections split between them.

    .venv/bin/python bench/stores.py                          # 1,000,000 entries, 3000 messages
    .venv/bin/python bench/stores.py --entries 100000 --lookups 5000 --messages 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import redis

from relay.signing.keys import GeneratedKey, generate
from relay.stores.hashing import AddressHasher, load_or_create_key
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)
from relay.stores.redis import RedisStores
from relay.stores.sqlite import SqliteStores

sys.path.insert(0, str(Path(__file__).resolve().parent))  # throughput.py: sink, relay, clients
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's servers
from tests.support.dns_server import DnsServer, txt
from tests.support.network import free_port
from tests.support.redis_server import RedisServer

from throughput import (
    DOMAIN,
    LOOPBACK,
    MIB,
    ClientStats,
    RelayProcess,
    RssPoller,
    Sink,
    StartGate,
    build_body,
    percentile,
    run_client,
    toml_string,
)

SENDER_ID = "bench"
KEY_PREFIX = "bench:"
RECEIVED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OBTAINED_AT = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
REASONS = (
    SuppressionReason.UNSUBSCRIBE_ONE_CLICK,
    SuppressionReason.COMPLAINT_ARF,
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.MANUAL,
)
BACKENDS = ("sqlite", "redis")
WARMUP = 1000
PROGRESS_EVERY = 10  # seconds between load progress lines on stderr


# Synthetic recipients: suppressed (s), consented (c), never stored (u), written one at a time (w).
def recipient(kind: str, index: int) -> str:
    return f"{kind}{index:07d}@stores.bench.test"


def suppression(hasher: AddressHasher, address: str, index: int) -> SuppressionEntry:
    return SuppressionEntry(
        address_hash=hasher.hash(address),
        sender_id=SENDER_ID,
        scope=SuppressionScope.SENDER,
        reason=REASONS[index % len(REASONS)],
        source="bench:import",
        received_at=RECEIVED_AT,
        address=address,
    )


def consent(hasher: AddressHasher, index: int) -> ConsentRecord:
    address = recipient("c", index)
    return ConsentRecord(
        record_id=f"bench-{index:07d}",
        address_hash=hasher.hash(address),
        sender_id=SENDER_ID,
        scope=("*",),
        basis=ConsentBasis.EXPRESS_OPTIN,
        jurisdictions=frozenset({"EU"}),
        obtained_at=OBTAINED_AT,
        source="form:signup ip=192.0.2.7",
        evidence_ref=f"evidence/bench-{index:07d}.json",
        notice_version="privacy-2025-01",
        address=address,
    )


# -- part 1: the stores in this process -----------------------------------------------------


Stores = SqliteStores | RedisStores


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def latency(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1]),
        "calls": len(ordered),
    }


async def load_batches(
    stores: dict[str, Stores],
    count: int,
    batch: int,
    make: Callable[[int], Any],
    add: Callable[[Stores, list[Any]], Awaitable[int]],
    what: str,
) -> dict[str, float]:
    """Build `count` records `batch` at a time (not timed), give each batch to every backend in
    turn and time only the add calls; returns records added per second by backend."""
    spent = dict.fromkeys(stores, 0.0)
    last_note = time.monotonic()
    for start in range(0, count, batch):
        rows = [make(index) for index in range(start, min(start + batch, count))]
        for name, backend in stores.items():
            started = time.perf_counter()
            added = await add(backend, rows)
            spent[name] += time.perf_counter() - started
            if added != len(rows):
                raise RuntimeError(f"{name}: added {added} of {len(rows)} {what}")
        if time.monotonic() - last_note > PROGRESS_EVERY:
            last_note = time.monotonic()
            done = start + len(rows)
            rates = ", ".join(f"{n} {done / s:,.0f}/s" for n, s in spent.items())
            print(f"  loading {what}: {done:,} of {count:,} ({rates})", file=sys.stderr)
    return {name: round(count / seconds, 1) for name, seconds in spent.items()}


async def time_calls(
    call: Callable[[str], Awaitable[Any]],
    addresses: list[str],
    expect: Callable[[str, Any], bool],
) -> tuple[list[float], int]:
    """Latency of each call, one after the other; and how many answers were not the
    expected one."""
    samples = []
    wrong = 0
    clock = time.perf_counter
    for address in addresses:
        started = clock()
        answer = await call(address)
        samples.append(clock() - started)
        if not expect(address, answer):
            wrong += 1
    return samples, wrong


async def concurrent_rate(
    call: Callable[[str], Awaitable[Any]], addresses: list[str], callers: int
) -> float:
    """Calls per second with `callers` tasks on one event loop, as relay's connections share
    one stores object."""

    async def caller(part: list[str]) -> None:
        for address in part:
            await call(address)

    started = time.perf_counter()
    await asyncio.gather(*(caller(addresses[i::callers]) for i in range(callers)))
    return round(len(addresses) / (time.perf_counter() - started), 1)


def lookup_mix(
    rng: random.Random, count: int, stored: int, kind: str
) -> tuple[list[str], set[str]]:
    """`count` recipients, half of them stored (`kind`, index < stored), half never stored;
    and the set of the stored ones."""
    present = set()
    addresses = []
    for n in range(count):
        if n % 2 == 0 and stored:
            address = recipient(kind, rng.randrange(stored))
            present.add(address)
        else:
            address = recipient("u", rng.randrange(10_000_000))
        addresses.append(address)
    rng.shuffle(addresses)
    return addresses, present


def sizes(sqlite_path: Path, client: redis.Redis) -> dict[str, Any]:
    files = [sqlite_path, Path(f"{sqlite_path}-wal"), Path(f"{sqlite_path}-shm")]
    memory: dict[str, Any] = client.info("memory")
    return {
        "sqlite_file_mib": round(sum(p.stat().st_size for p in files if p.exists()) / MIB, 1),
        "redis_used_memory_mib": round(int(memory["used_memory"]) / MIB, 1),
        "redis_used_memory_rss_mib": round(int(memory["used_memory_rss"]) / MIB, 1),
        "redis_keys": int(client.dbsize()),
    }


async def measure_stores(
    args: argparse.Namespace, directory: Path, server: RedisServer, key_file: Path
) -> tuple[dict[str, Any], int]:
    hasher = AddressHasher(load_or_create_key(key_file))
    sqlite_path = directory / "stores.sqlite"
    stores: dict[str, Stores] = {
        "sqlite": SqliteStores(sqlite_path, hasher, True),
        "redis": RedisStores(
            server.url,
            hasher,
            True,
            directory / "redis-node-stats.sqlite",
            key_prefix=KEY_PREFIX,
            timeout=args.redis_timeout,
        ),
    }
    info = redis.Redis(host=LOOPBACK, port=server.port)
    rng = random.Random(args.seed)
    wrong = 0
    figures: dict[str, Any] = {name: {} for name in BACKENDS}
    for backend in stores.values():
        await backend.open()
    try:
        print(f"loading {args.entries:,} suppression entries, {args.batch:,} per call ...")
        load_started = time.monotonic()
        rates = await load_batches(
            stores,
            args.entries,
            args.batch,
            lambda i: suppression(hasher, recipient("s", i), i),
            lambda backend, rows: backend.add_suppressions(rows),
            "suppressions",
        )
        for name in BACKENDS:
            figures[name]["batch_writes_per_s"] = rates[name]
        figures["load_wall_s"] = round(time.monotonic() - load_started, 1)
        figures["after_load"] = sizes(sqlite_path, info)

        # Suppression lookups: the same addresses, in the same order, on each backend.
        warmup, _ = lookup_mix(rng, WARMUP, args.entries, "s")
        addresses, present = lookup_mix(rng, args.lookups, args.entries, "s")
        for name, backend in stores.items():

            async def look(address: str, backend: Stores = backend) -> Any:
                return await backend.suppression_for(address, SENDER_ID, None)

            def found(address: str, entry: Any) -> bool:
                return (entry is not None) == (address in present)

            await time_calls(look, warmup, lambda _a, _e: True)
            samples, missed = await time_calls(look, addresses, found)
            wrong += missed
            figures[name]["suppression_lookup"] = latency(samples)
            figures[name]["suppression_lookups_per_s_concurrent"] = await concurrent_rate(
                look, addresses, args.concurrency
            )

        # Single-entry writes, as the admin API adds one suppression per request.
        for name, backend in stores.items():
            samples = []
            for i in range(args.writes):
                entry = suppression(hasher, recipient(f"w{name[0]}", i), i)
                started = time.perf_counter()
                added = await backend.add_suppressions([entry])
                samples.append(time.perf_counter() - started)
                wrong += added != 1
            figures[name]["single_writes_per_s"] = round(len(samples) / sum(samples), 1)
            figures[name]["single_write"] = latency(samples)

        # Consent records, then consents_for on a half consented, half unknown mix.
        if args.consents:
            print(f"loading {args.consents:,} consent records, {args.consent_batch:,} per call ...")
            rates = await load_batches(
                stores,
                args.consents,
                args.consent_batch,
                lambda i: consent(hasher, i),
                lambda backend, rows: backend.add_consents(rows),
                "consents",
            )
            for name in BACKENDS:
                figures[name]["consent_batch_writes_per_s"] = rates[name]
        warmup, _ = lookup_mix(rng, WARMUP, args.consents, "c")
        addresses, present = lookup_mix(rng, args.lookups, args.consents, "c")
        for name, backend in stores.items():

            async def records(address: str, backend: Stores = backend) -> Any:
                return await backend.consents_for(address, SENDER_ID)

            def holds(address: str, found: Any) -> bool:
                return len(found) == (1 if address in present else 0)

            await time_calls(records, warmup, lambda _a, _r: True)
            samples, missed = await time_calls(records, addresses, holds)
            wrong += missed
            figures[name]["consent_lookup"] = latency(samples)
        figures["at_end"] = sizes(sqlite_path, info)
    finally:
        for backend in stores.values():
            await backend.close()
        info.close()
    figures["wrong_answers"] = wrong
    return figures, wrong


LABEL = 50  # width of the figure names in the report


def line(label: str, value: str) -> None:
    print(f"{label + ':':<{LABEL}} {value}")


def pair(label: str, figures: dict[str, Any], show: Callable[[dict[str, Any]], str]) -> None:
    """One figure, SQLite beside Redis."""
    line(label, f"sqlite {show(figures['sqlite']):>14}    redis {show(figures['redis']):>14}")


def size_line(label: str, size: dict[str, Any]) -> None:
    sqlite, used = (
        f"{size['sqlite_file_mib']:,.1f} MiB",
        f"{size['redis_used_memory_mib']:,.1f} MiB",
    )
    line(
        label,
        f"sqlite {sqlite:>14}    redis {used:>14} (used_memory; RSS"
        f" {size['redis_used_memory_rss_mib']:,.1f} MiB, {size['redis_keys']:,} keys)",
    )


def report_stores(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    def rate(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda backend: f"{backend[key]:,.0f}/s"

    def quantile(key: str, p: str) -> Callable[[dict[str, Any]], str]:
        return lambda backend: f"{backend[key][p + '_ms']:.3f} ms"

    line("suppression entries", f"{args.entries:,}")
    pair(f"batch writes ({args.batch:,} per add_suppressions)", figures, rate("batch_writes_per_s"))
    line("load wall time (both backends, hashing)", f"{figures['load_wall_s']:.1f} s")
    size_line("size after load", figures["after_load"])
    for p in ("p50", "p99"):
        pair(f"suppression_for {p}", figures, quantile("suppression_lookup", p))
    pair(
        f"suppression_for, {args.concurrency} concurrent callers",
        figures,
        rate("suppression_lookups_per_s_concurrent"),
    )
    pair("single writes (1 entry per add_suppressions)", figures, rate("single_writes_per_s"))
    for p in ("p50", "p99"):
        pair(f"single write {p}", figures, quantile("single_write", p))
    if args.consents:
        line("consent records", f"{args.consents:,}")
        pair(
            f"consent batch writes ({args.consent_batch:,} per add_consents)",
            figures,
            rate("consent_batch_writes_per_s"),
        )
    for p in ("p50", "p99"):
        pair(f"consents_for {p}", figures, quantile("consent_lookup", p))
    size_line("size at end", figures["at_end"])
    line("wrong answers (lookups, writes)", str(figures["wrong_answers"]))


# -- part 2: relay nodes on Redis -----------------------------------------------------------


@dataclass
class Shared:
    """What every node of a run shares: Redis, the keys, the DNS fixture, the DKIM key."""

    redis_url: str
    hmac_key_file: Path
    token_key_file: Path
    dns_address: str
    dkim: GeneratedKey
    max_message_size: int
    redis_pid: int


def start_node(directory: Path, sink_port: int, shared: Shared) -> RelayProcess:
    directory.mkdir(parents=True)
    shared_stores = "\n".join(
        [
            "[stores]",
            'backend = "redis"',
            f"hmac_key_file = {toml_string(str(shared.hmac_key_file))}",
            "",
            "[redis]",
            f"url = {toml_string(shared.redis_url)}",
            f"key_prefix = {toml_string(KEY_PREFIX)}",
            "",
            "[rewrite]",
            f"token_key_file = {toml_string(str(shared.token_key_file))}",
            "",
        ]
    )
    return RelayProcess(
        directory,
        sink_port,
        shared.max_message_size,
        shared.dns_address,
        shared.dkim,
        extra_config=shared_stores,
    ).start()


async def submit_split(
    ports: list[int], first: int, messages: int, concurrency: int, body: bytes
) -> list[ClientStats]:
    """`concurrency` connections, connection k to ports[k % len(ports)], one clock start for
    all; message numbers first .. first + messages - 1, split evenly. Stats by port."""
    stats = [ClientStats() for _ in ports]
    gate = StartGate(concurrency)
    share, extra = divmod(messages, concurrency)
    tasks = []
    owners = []
    start = first
    for k in range(concurrency):
        count = share + (1 if k < extra else 0)
        node = k % len(ports)
        tasks.append(
            asyncio.create_task(
                run_client(
                    LOOPBACK, ports[node], range(start, start + count), body, gate, stats[node]
                )
            )
        )
        owners.append((node, count))
        start += count
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for (node, count), result in zip(owners, results, strict=True):
        if isinstance(result, BaseException):
            stats[node].error(f"client: {result!r}")
            stats[node].errors += count - 1  # none of its messages went out
    return stats


async def node_run(
    args: argparse.Namespace, directory: Path, shared: Shared, nodes: int, first: int
) -> dict[str, Any]:
    sink = Sink(0).start()
    relays: list[RelayProcess] = []
    pollers: list[RssPoller] = []
    figures: dict[str, Any] = {"nodes": nodes}
    try:
        for n in range(nodes):
            relays.append(start_node(directory / f"node-{n + 1}", sink.port, shared))
        pollers = [RssPoller(relay.pid).start() for relay in relays]
        redis_process = psutil.Process(shared.redis_pid)
        redis_cpu = sum(redis_process.cpu_times()[:2])
        client_cpu = time.process_time()
        body = build_body(args.size)
        stats = await submit_split(
            [relay.port for relay in relays], first, args.messages, args.concurrency, body
        )
        client_cpu = time.process_time() - client_cpu
        redis_cpu = sum(redis_process.cpu_times()[:2]) - redis_cpu
        accepted = sum(s.accepted for s in stats)
        deadline = time.monotonic() + 120 + args.messages / 50
        while sink.delivered < accepted and time.monotonic() < deadline:
            if not all(relay.alive() for relay in relays):
                break
            await asyncio.sleep(0.02)
    finally:
        for poller in pollers:
            poller.stop()
        for relay in relays:
            started = time.monotonic()
            code = relay.stop()
            if code not in (0, None):
                print(
                    f"{relay.directory.name} of the {nodes}-node run exited with {code}"
                    f" {time.monotonic() - started:.1f} s after SIGTERM (SIGKILL after 30 s)"
                    f"\n{relay.log()}",
                    file=sys.stderr,
                )
        delivered = sink.delivered
        sink.stop()
    span = max(s.last_250 for s in stats) - min(s.first_mail for s in stats)
    latencies = sorted(x for s in stats for x in s.latencies)
    for s in stats:
        for sample in s.error_samples:
            print(f"error: {sample}", file=sys.stderr)
    figures.update(
        {
            "connections": args.concurrency,
            "messages": args.messages,
            "accepted_per_s": round(accepted / span, 1) if accepted and span > 0 else None,
            "accepted_per_s_by_node": [
                round(s.accepted / (s.last_250 - s.first_mail), 1) if s.accepted else None
                for s in stats
            ],
            "p50_ms": round(percentile(latencies, 0.50) * 1000, 2) if latencies else None,
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2) if latencies else None,
            "errors": sum(s.errors for s in stats)
            + max(0, args.messages - accepted - sum(s.errors for s in stats)),
            "delivered": delivered,
            "relay_cpu_s": [round(p.cpu_used or 0.0, 2) for p in pollers],
            "relay_peak_rss_mib": [round(p.peak / MIB, 1) for p in pollers],
            "redis_cpu_s": round(redis_cpu, 2),
            "client_cpu_s": round(client_cpu, 2),
        }
    )
    return figures


async def measure_nodes(
    args: argparse.Namespace, directory: Path, server: RedisServer, key_file: Path
) -> dict[str, Any]:
    assert server.process is not None
    dns = DnsServer(directory / "nsd", free_port())
    dkim = generate(DOMAIN, "bench", directory / "keys")
    shared = Shared(
        redis_url=server.url,
        hmac_key_file=key_file,
        token_key_file=directory / "keys" / "unsubscribe-token.key",
        dns_address=dns.address,
        dkim=dkim,
        max_message_size=max(36_700_160, args.size * 4),
        redis_pid=server.process.pid,
    )
    dns.start()
    try:
        dns.add(
            txt(DOMAIN, f"v=spf1 ip4:{LOOPBACK} -all"),
            txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject"),
            txt(dkim.txt_record_name, dkim.txt_record_value),
        )
        one = await node_run(args, directory / "one", shared, 1, 0)
        two = await node_run(args, directory / "two", shared, 2, args.messages)
    finally:
        dns.stop()
    ratio = (
        round(two["accepted_per_s"] / one["accepted_per_s"], 2)
        if one["accepted_per_s"] and two["accepted_per_s"]
        else None
    )
    return {"one_node": one, "two_nodes": two, "two_over_one": ratio}


def report_nodes(figures: dict[str, Any]) -> None:
    def listed(values: list[Any], unit: str = "") -> str:
        return " + ".join("n/a" if v is None else f"{v:,.1f}{unit}" for v in values)

    for key in ("one_node", "two_nodes"):
        run = figures[key]
        label = "1 node" if run["nodes"] == 1 else f"{run['nodes']} nodes"
        line(
            f"{label}: accepted/s",
            f"{run['accepted_per_s']}  (by node: {listed(run['accepted_per_s_by_node'])})",
        )
        line(f"{label}: p50, p99 time-to-250", f"{run['p50_ms']} ms, {run['p99_ms']} ms")
        line(
            f"{label}: errors, delivered",
            f"{run['errors']}, {run['delivered']} of {run['messages']}",
        )
        line(
            f"{label}: CPU relay, redis-server, client",
            f"{listed(run['relay_cpu_s'], ' s')}, {run['redis_cpu_s']} s, {run['client_cpu_s']} s",
        )
        line(f"{label}: relay peak RSS", listed(run["relay_peak_rss_mib"], " MiB"))
    line("two nodes / one node, accepted/s", str(figures["two_over_one"]))


# -- the run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="suppression entries")
    parser.add_argument("--batch", type=int, default=50_000, help="records per add_* call")
    parser.add_argument(
        "--consent-batch",
        type=int,
        default=50_000,
        help="records per add_consents call",
    )
    parser.add_argument("--lookups", type=int, default=20_000, help="timed lookups per kind")
    parser.add_argument("--writes", type=int, default=2_000, help="single-entry writes")
    parser.add_argument("--consents", type=int, default=100_000, help="consent records")
    parser.add_argument("--messages", type=int, default=3_000, help="messages per node run")
    parser.add_argument("--concurrency", type=int, default=20, help="client connections")
    parser.add_argument("--size", type=int, default=10_240, help="approximate message size")
    parser.add_argument(
        "--redis-timeout", type=float, default=0.5, help="RedisStores timeout in part 1 (s)"
    )
    parser.add_argument("--part", choices=("stores", "nodes", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if min(args.entries, args.batch, args.consent_batch, args.lookups, args.writes) < 1:
        parser.error("--entries, --batch, --consent-batch, --lookups, --writes must be >= 1")
    if args.messages < 1:
        parser.error("--messages must be >= 1")
    if args.consents < 0 or args.concurrency < 2 or args.size < 256:
        parser.error("--consents must be >= 0, --concurrency >= 2, --size >= 256")
    args.concurrency = min(args.concurrency, args.messages)
    return args


def stop_redis(server: RedisServer) -> None:
    """SIGTERM, and SIGKILL when it is still busy with a long command after 10 s."""
    try:
        server.stop()
    except subprocess.TimeoutExpired:
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        print("redis-server did not stop on SIGTERM within 10 s: killed", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures: dict[str, Any] = {"entries": args.entries}
    status = 0
    with tempfile.TemporaryDirectory(prefix="relay-bench-stores-") as temp:
        directory = Path(temp)
        key_file = directory / "keys" / "address-hmac.key"
        server = RedisServer(directory / "redis", free_port())
        try:
            server.start()
        except RuntimeError as exc:
            print(f"benchmark: {exc}", file=sys.stderr)
            return 2
        try:
            if args.part in ("stores", "both"):
                stores, wrong = asyncio.run(measure_stores(args, directory, server, key_file))
                figures["stores"] = stores
                report_stores(args, stores)
                status = max(status, 1 if wrong else 0)
            if args.part in ("nodes", "both"):
                try:
                    nodes = asyncio.run(measure_nodes(args, directory, server, key_file))
                except RuntimeError as exc:
                    print(f"benchmark: {exc}", file=sys.stderr)
                    return 2
                figures["nodes"] = nodes
                report_nodes(nodes)
                for run in (nodes["one_node"], nodes["two_nodes"]):
                    if run["errors"] or run["delivered"] < run["messages"]:
                        status = 1
        finally:
            stop_redis(server)
    print(json.dumps(figures, separators=(",", ":")))
    return status


if __name__ == "__main__":
    sys.exit(main())
