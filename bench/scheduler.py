"""Scheduler benchmark: with N recipients queued over 10,000 destination domains, time the
scheduler's work per delivery attempt (relay.delivery.scheduler: add -> pop_due -> place ->
take -> release) and its memory, at N = 10,000, 100,000 and 1,000,000; then time start-up from
a spool index of 1,000,000 queued recipients (Spool.open and Spool.queued, and building the
jobs as QueueManager.start does).

Everything runs in this process, without a network: attempts complete the instant they are
taken. Domains are mapped to destinations with the shipped config/shaping.toml: 40% of the
recipients are at domains hosted by the big providers (gmail, outlook, yahoo, icloud: shared
destinations with rate limits, which the run soon reaches, so those destinations spend most of
it waiting for their windows to move), the rest at domains that are destinations of their own.
200 senders, skewed (the first few send most of the mail); 10% transactional.

Each size starts from an empty scheduler: N jobs are added, 30% due now (they are placed at
their destinations) and 70% due over the next 4 hours (they sleep in the heap). Then, one
attempt at a time: pop_due + place what came due, take one job, release it; 80% of the attempts
deliver (the job is gone, and a new message's job to the same domain arrives, due now, so N stays
put), 20% defer (the job is added again, due in 1 min to 1 h). Per-attempt time is the wall
time of that loop divided by the attempts. RSS is the process's resident set after the jobs are
added (current, psutil) and its peak (getrusage).

The start-up part runs in a child process (for its own peak RSS). Accepting a million messages
through Spool.accept would fsync each one, so the index is written directly: a Spool is opened
in a temporary directory to create the schema, then 1,000,000 messages rows and their recipient
rows (one queued recipient each, over the same 10,000 domains) are inserted with plain sqlite3
executemany. There are no queue files; Spool.open's recovery only reads the index then.

    .venv/bin/python bench/scheduler.py
    .venv/bin/python bench/scheduler.py --sizes 10000 100000 --startup 100000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from relay.delivery.queue_manager import queued_job
from relay.delivery.scheduler import Job, Lane, Scheduler
from relay.delivery.shaping import Shaping
from relay.spool.records import RecipientState
from relay.spool.store import Spool, new_queue_id

DOMAINS = 10_000
PROVIDERS = ("gmail", "outlook", "yahoo", "icloud")
PROVIDER_SHARE = 0.4
SENDERS = 200
TRANSACTIONAL = 0.1
DUE_NOW = 0.3
DEFER = 0.2
HORIZON = 4 * 3600.0
MIB = 1024 * 1024


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / MIB


class World:
    """The domains, their destinations and the senders, drawn once with a fixed seed."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.shaping = Shaping({})
        self.domains = [f"d{n}.example" for n in range(DOMAINS)]
        # A tenth of the domains are at the providers, but they get PROVIDER_SHARE of the mail.
        self.destination = {
            domain: PROVIDERS[n % len(PROVIDERS)] if n % 10 == 0 else domain
            for n, domain in enumerate(self.domains)
        }
        self.provider_domains = [d for d in self.domains if self.destination[d] != d]
        self.own_domains = [d for d in self.domains if self.destination[d] == d]
        self.senders = [f"sender{n}.example" for n in range(SENDERS)]
        weights = [1.0 / (n + 1) for n in range(SENDERS)]
        self.sender_cum_weights = [sum(weights[: n + 1]) for n in range(SENDERS)]

    def recipient_domain(self) -> str:
        domains = (
            self.provider_domains if self.random.random() < PROVIDER_SHARE else (self.own_domains)
        )
        # A fresh string per recipient, as the queue manager's address parsing makes them.
        return "".join(self.random.choice(domains))

    def sender(self) -> str:
        return "".join(self.random.choices(self.senders, cum_weights=self.sender_cum_weights)[0])

    def job(self, due_at: float) -> Job:
        return Job(
            new_queue_id(),
            self.recipient_domain(),
            self.sender(),
            transactional=self.random.random() < TRANSACTIONAL,
            cost=1,
            due_at=due_at,
        )


async def run_size(world: World, size: int, attempts: int) -> dict[str, float]:
    gc.collect()
    base = rss_mib()
    scheduler = Scheduler()
    lanes: dict[str, Lane] = {}

    def lane_of(job: Job) -> Lane:
        name = world.destination[job.domain]
        lane = lanes.get(name)
        if lane is None:
            lane = lanes[name] = scheduler.lane(name, world.shaping.limits(name))
        return lane

    rand = world.random
    now = time.time()
    started = time.perf_counter()
    for _ in range(size):
        due = now - rand.random() if rand.random() < DUE_NOW else now + rand.random() * HORIZON
        scheduler.add(world.job(due))
    fill = time.perf_counter() - started
    for job in scheduler.pop_due(now):
        scheduler.place(job, lane_of(job))
    after_fill = rss_mib()

    # The work of the attempts themselves (drawing outcomes and new jobs) is timed apart and
    # subtracted: it is the benchmark's, not the scheduler's.
    new_jobs = [world.job(0.0) for _ in range(attempts)]
    deferred = [rand.random() < DEFER for _ in range(attempts)]
    delays = [60 + rand.random() * 3540 for _ in range(attempts)]
    done = idle = 0
    gc.collect()
    started = time.perf_counter()
    for n in range(attempts):
        now = time.time()
        for job in scheduler.pop_due(now):
            scheduler.place(job, lane_of(job))
        taken = await scheduler.take(now)
        if taken is None:
            idle += 1
            continue
        job, lane = taken
        await scheduler.release(lane, job)
        if deferred[n]:
            job.due_at = now + delays[n]
            scheduler.add(job)
        else:
            new = new_jobs[n]
            new.domain = job.domain  # the next message to that domain
            new.due_at = now
            scheduler.add(new)
        done += 1
    elapsed = time.perf_counter() - started
    waiting = sum(lane.queued for lane in scheduler.lanes.values())
    return {
        "queued": size,
        "fill_s": fill,
        "attempts": done,
        "idle": idle,
        "per_attempt_us": elapsed / max(done, 1) * 1e6,
        "sleeping": len(scheduler),
        "waiting": waiting,
        "lanes": len(scheduler.lanes),
        "rss_mib": after_fill,
        "job_bytes": (after_fill - base) * MIB / size,
        "peak_rss_mib": peak_rss_mib(),
    }


# -- start-up from the spool index (child process) -------------------------------------------


def build_index(path: Path, rows: int, seed: int) -> None:
    world = World(seed)

    async def create() -> None:
        spool = Spool(path)
        await spool.open()
        await spool.close()

    asyncio.run(create())
    db = sqlite3.connect(path / "index.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    rand = world.random
    batch = 100_000
    db.execute("BEGIN")
    for start in range(0, rows, batch):
        messages = []
        recipients = []
        for n in range(start, min(rows, start + batch)):
            queue_id = f"{n:014X}{rand.getrandbits(32):08X}"
            sender = world.sender()
            transactional = rand.random() < TRANSACTIONAL
            messages.append(
                (
                    queue_id,
                    f"mailer@{sender}",
                    now,
                    10_000,
                    None,
                    "transactional" if transactional else "commercial",
                    0,
                )
            )
            due = now - rand.random() if rand.random() < DUE_NOW else now + rand.random() * HORIZON
            recipients.append(
                (
                    queue_id,
                    f"user{n}@{world.recipient_domain()}",
                    RecipientState.QUEUED.value,
                    due,
                    now,
                )
            )
        db.executemany(
            "INSERT INTO messages (queue_id, mail_from, received_at, size, sender_id,"
            " message_class, verp) VALUES (?, ?, ?, ?, ?, ?, ?)",
            messages,
        )
        db.executemany(
            "INSERT INTO recipients (queue_id, address, state, next_attempt_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            recipients,
        )
    db.execute("COMMIT")
    db.close()


async def startup(path: Path) -> dict[str, float]:
    spool = Spool(path)
    started = time.perf_counter()
    await spool.open()
    opened = time.perf_counter()
    groups = await spool.queued()
    read = time.perf_counter()
    scheduler = Scheduler()
    for group in groups:  # as QueueManager.start does
        scheduler.add(queued_job(group))
    built = time.perf_counter()
    count = len(groups)
    del groups
    gc.collect()
    held = rss_mib()
    await spool.close()
    return {
        "rows": count,
        "open_s": opened - started,
        "queued_s": read - opened,
        "jobs_s": built - read,
        "jobs_rss_mib": held,
        "peak_rss_mib": peak_rss_mib(),
    }


def startup_child(rows: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-bench-scheduler-") as directory:
        path = Path(directory) / "spool"
        started = time.perf_counter()
        build_index(path, rows, seed)
        built = time.perf_counter() - started
        size = (path / "index.sqlite").stat().st_size / MIB
        gc.collect()
        result = asyncio.run(startup(path))
    print(json.dumps({**result, "build_s": built, "index_mib": size}))


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--attempts", type=int, default=50_000, help="timed attempts per size")
    parser.add_argument("--startup", type=int, default=1_000_000, help="index rows; 0: skip")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--startup-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.startup_child:
        startup_child(args.startup_child, args.seed)
        return

    results = []
    for size in sorted(args.sizes):
        world = World(args.seed)
        # Deferrals drain the due jobs: at the small sizes, fewer attempts.
        result = asyncio.run(run_size(world, size, min(args.attempts, size // 2)))
        results.append(result)
        del world
    header = (
        f"{'queued':>10} {'fill s':>7} {'attempts':>9} {'idle':>6} {'us/attempt':>11}"
        f" {'sleeping':>9} {'waiting':>8} {'lanes':>6} {'RSS MiB':>8} {'B/job':>6}"
        f" {'peak MiB':>9}"
    )
    print(header)
    for r in results:
        print(
            f"{r['queued']:>10,} {r['fill_s']:>7.2f} {r['attempts']:>9,} {r['idle']:>6,}"
            f" {r['per_attempt_us']:>11.1f} {r['sleeping']:>9,} {r['waiting']:>8,}"
            f" {r['lanes']:>6,} {r['rss_mib']:>8.0f} {r['job_bytes']:>6.0f}"
            f" {r['peak_rss_mib']:>9.0f}"
        )
    startup_result = None
    if args.startup:
        command = [sys.executable, __file__, "--startup-child", str(args.startup)]
        child = subprocess.run(
            [*command, "--seed", str(args.seed)],
            capture_output=True,
            text=True,
            check=True,
        )
        startup_result = json.loads(child.stdout.strip().splitlines()[-1])
        s = startup_result
        print(
            f"start-up from {s['rows']:,} queued recipients (index {s['index_mib']:.0f} MiB,"
            f" built in {s['build_s']:.1f} s): Spool.open {s['open_s']:.2f} s,"
            f" Spool.queued {s['queued_s']:.2f} s, jobs {s['jobs_s']:.2f} s;"
            f" RSS holding the jobs {s['jobs_rss_mib']:.0f} MiB, peak {s['peak_rss_mib']:.0f} MiB"
        )
    per = {r["queued"]: r["per_attempt_us"] for r in results}
    names = {10_000: "10k", 100_000: "100k", 1_000_000: "1M"}
    figures = " ".join(f"{names.get(int(q), str(int(q)))}={us:.1f}us" for q, us in per.items())
    line = f"scheduler: per-attempt {figures} rss={results[-1]['peak_rss_mib']:.0f} MiB"
    if startup_result is not None:
        s = startup_result
        line += (
            f" startup({s['rows']:,})={s['open_s'] + s['queued_s'] + s['jobs_s']:.1f}s"
            f" peak={s['peak_rss_mib']:.0f} MiB"
        )
    print(line)


if __name__ == "__main__":
    main()
