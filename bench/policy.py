"""Policy benchmark: with N suppression entries and N consent records in the SQLite stores, time
the RCPT-time decision per recipient (Checkpoint.recipient: store lookups, RCPT rules, and for a
refusal the fsync'd audit append) and the DATA-time evaluation of a ~50 KB HTML commercial
message (Checkpoint.message: parsing, X-Relay-* declarations, RCPT and DATA rules).

Everything runs in this process, on the shipped policies, a real SqliteStores and a real
AuditLog; no SMTP. The store is filled with synthetic recipients at example.us (US),
example.de (EU) and example.cn (CN); with --db the prepared file is kept and reused.

    .venv/bin/python bench/policy.py --suppressions 100000 --consents 100000
    .venv/bin/python bench/policy.py --db /var/tmp/relay-bench-policy.sqlite3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from relay.audit.log import AuditLog
from relay.audit.records import AuditEvent
from relay.policy.checkpoint import Checkpoint, Transaction
from relay.policy.context import MessageContext
from relay.policy.engine import PolicyEngine
from relay.policy.files import load_policies, policy_paths
from relay.policy.model import Stage
from relay.policy.rules.cadence import history_window
from relay.replies import Reply
from relay.stores.hashing import AddressHasher
from relay.stores.history import SqliteHistory, to_micros
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    MessageClass,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)
from relay.stores.sqlite import SqliteStores

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's sender
from tests.policy.builders import (
    CONTACT,
    LEGAL_NAME,
    POSTAL_ADDRESS,
    PRIVACY_URL,
    SENDER,
    UNSUBSCRIBE_MAILTO,
    UNSUBSCRIBE_URL,
)

KEY = bytes(range(32))  # fixed, so that a prepared --db file stays usable across runs
MAIL_FROM = "bounces+bench@shop.example"
CLIENT_ADDRESS = "192.0.2.10"
CAMPAIGN = "newsletter"

# Synthetic recipients: PREFIX + index at example.TLD, the TLD cycling with the index.
TLDS = (("us", "US"), ("de", "EU"), ("cn", "CN"))
SUPPRESSED, CONSENTED, UNKNOWN = "suppressed", "consented", "unknown"
PREFIXES = {SUPPRESSED: "s", CONSENTED: "c", UNKNOWN: "u"}
RECEIVED_AT = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
OBTAINED_AT = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
REASONS = (
    SuppressionReason.UNSUBSCRIBE_ONE_CLICK,
    SuppressionReason.UNSUBSCRIBE_MAILTO,
    SuppressionReason.COMPLAINT_ARF,
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.OBJECTION,
)

BATCH = 50_000
WARMUP = 500
TARGET_P99_MS = 2.0
MIB = 1024 * 1024


def address(kind: str, index: int) -> str:
    return f"{PREFIXES[kind]}{index:07d}@example.{TLDS[index % len(TLDS)][0]}"


def jurisdiction(index: int) -> str:
    return TLDS[index % len(TLDS)][1]


# -- preparing the stores -------------------------------------------------------------------


def suppression(hasher: AddressHasher, index: int) -> SuppressionEntry:
    recipient = address(SUPPRESSED, index)
    return SuppressionEntry(
        address_hash=hasher.hash(recipient),
        sender_id=SENDER.sender_id,
        scope=SuppressionScope.SENDER,
        reason=REASONS[index % len(REASONS)],
        source="bench:import",
        received_at=RECEIVED_AT,
        address=recipient,
    )


def consent(hasher: AddressHasher, index: int) -> ConsentRecord:
    """A valid express opt-in for all of the sender's mail, tagged with the recipient's
    jurisdiction (what EU-EPR-CONSENT and PRC-CONSENT-EXPLICIT look for)."""
    recipient = address(CONSENTED, index)
    return ConsentRecord(
        record_id=f"bench-{index:07d}",
        address_hash=hasher.hash(recipient),
        sender_id=SENDER.sender_id,
        scope=("*",),
        basis=ConsentBasis.EXPRESS_OPTIN,
        jurisdictions=frozenset({jurisdiction(index)}),
        obtained_at=OBTAINED_AT,
        source="form:signup ip=192.0.2.7",
        evidence_ref=f"evidence/bench-{index:07d}.json",
        notice_version="privacy-2025-01",
        address=recipient,
    )


def stored_counts(path: Path, hasher: AddressHasher) -> tuple[int, int, bool] | None:
    """(suppressions, consents, the synthetic recipients are there under KEY) of a store file,
    or None when it is not a relay store."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        ((suppressions,),) = db.execute(
            "SELECT count(*) FROM suppressions WHERE sender_id = ?", (SENDER.sender_id,)
        ).fetchall()
        ((consents,),) = db.execute(
            "SELECT count(*) FROM consents WHERE sender_id = ?", (SENDER.sender_id,)
        ).fetchall()
        probes = []
        if suppressions:
            probes.append(
                (
                    "SELECT 1 FROM suppressions WHERE address_hash = ?",
                    hasher.digest(address(SUPPRESSED, suppressions - 1)),
                )
            )
        if consents:
            probes.append(
                (
                    "SELECT 1 FROM consents WHERE address_hash = ?",
                    hasher.digest(address(CONSENTED, consents - 1)),
                )
            )
        ours = all(db.execute(query, (key,)).fetchall() for query, key in probes)
        return int(suppressions), int(consents), ours
    except sqlite3.Error:
        return None
    finally:
        db.close()


async def load(
    stores: SqliteStores, what: str, count: int, add: Callable[[int, int], Any]
) -> float:
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        end = min(count, start + BATCH)
        await add(start, end)
        if end == count or end % (BATCH * 4) == 0:
            elapsed = time.perf_counter() - started
            print(f"  {what}: {end:,} of {count:,} ({elapsed:.1f} s)", file=sys.stderr)
    return time.perf_counter() - started


async def prepare(stores: SqliteStores, suppressions: int, consents: int) -> dict[str, float]:
    hasher = stores.hasher
    await stores.put_senders([SENDER])

    async def add_suppressions(start: int, end: int) -> None:
        await stores.add_suppressions(suppression(hasher, i) for i in range(start, end))

    async def add_consents(start: int, end: int) -> None:
        await stores.add_consents(consent(hasher, i) for i in range(start, end))

    print(f"loading {suppressions:,} suppressions, {consents:,} consents", file=sys.stderr)
    return {
        "suppressions": await load(stores, "suppressions", suppressions, add_suppressions),
        "consents": await load(stores, "consents", consents, add_consents),
    }


def load_history(path: Path, hasher: AddressHasher, rows: int, recipients: int) -> float:
    """`rows` delivery-history rows for the first `recipients` consented recipients, the same
    number each, spread evenly over the last year (one in any 30 days, none in the last day):
    the caps read them all at RCPT and stay under their defaults. Loaded by one INSERT ...
    SELECT in primary-key order, the time index built afterwards."""
    started = time.perf_counter()
    per_recipient = -(-rows // recipients)
    day = 86_400_000_000
    spacing = 365 * day // per_recipient
    newest = to_micros(datetime.now(UTC)) - day
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("DROP INDEX deliveries_by_time")
        db.execute("CREATE TEMP TABLE r (h BLOB PRIMARY KEY, i INTEGER) WITHOUT ROWID")
        db.executemany(
            "INSERT INTO r VALUES (?, ?)",
            ((hasher.digest(address(CONSENTED, i)), i) for i in range(recipients)),
        )
        db.execute(
            "INSERT INTO deliveries"
            " (address_hash, sender_id, at, queue_id, list_id, content_hash)"
            " WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < ?)"
            " SELECT h, ?, ? - (i % 28) * ? - n * ?, 'b' || i || '-' || n,"
            " CASE n % 2 WHEN 0 THEN 'newsletter' ELSE 'offers' END, randomblob(16)"
            " FROM r CROSS JOIN k WHERE i * ? + n < ?",
            (per_recipient, SENDER.sender_id, newest, day, spacing, per_recipient, rows),
        )
        db.execute("CREATE INDEX deliveries_by_time ON deliveries (at)")
        db.commit()
    finally:
        db.close()
    return time.perf_counter() - started


# -- the DATA-time message ------------------------------------------------------------------


def build_message(size: int) -> bytes:
    """A commercial multipart/alternative message of about `size` bytes that every shipped
    policy accepts (for a consented US, EU or CN recipient): one-click List-Unsubscribe, a
    text part and a large HTML part (a product grid with many links) that both carry the
    unsubscribe link, legal name, postal address, contact and a privacy link. The
    Message-ID comes first and is 40 bytes long, so it can be replaced per message."""
    text_footer = (
        f"\n{LEGAL_NAME}, {POSTAL_ADDRESS}\nContact: {CONTACT}\n"
        f"Privacy notice: {PRIVACY_URL}\n"
        f"To stop receiving these e-mails, unsubscribe: {UNSUBSCRIBE_URL}\n"
    )
    html_head = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Summer sale</title>\n'
        "<style>body { font-family: sans-serif } .item { margin: 8px } .price"
        " { color: #c00 }</style>\n</head><body>\n"
        '<table role="presentation" width="100%"><tr><td>\n'
        '<h1><a href="https://shop.example/?utm_source=mail">Shop Example</a> summer'
        " sale</h1>\n<p>Our summer sale starts today: 20% off selected items.</p>\n"
    )
    html_footer = (
        "</td></tr></table>\n"
        f"<p>{LEGAL_NAME}<br>1 Market Street<br>Springfield, IL 62701</p>\n"
        f'<p>Contact: <a href="mailto:{CONTACT}">{CONTACT}</a>\n'
        f'| <a href="{PRIVACY_URL}">Privacy notice</a>\n'
        f'| <a href="{UNSUBSCRIBE_URL}">Unsubscribe</a></p>\n</body></html>\n'
    )

    def item(number: int) -> tuple[str, str]:
        url = f"https://shop.example/p/{number:05d}?utm_source=mail&amp;utm_campaign=summer"
        html = (
            f'<div class="item"><a href="{url}"><img src="https://cdn.shop.example/i/'
            f'{number:05d}.jpg" alt="Item {number}" width="160" height="160"></a>\n'
            f'<p><a href="{url}">Garden chair model {number}</a>, weatherproof, in four'
            f' colours. <span class="price">Now $ {20 + number % 80}.99</span></p></div>\n'
        )
        text = f"Garden chair model {number}: https://shop.example/p/{number:05d}\n"
        return html, text

    def build(items: int) -> bytes:
        rows = [item(number) for number in range(items)]
        built = EmailMessage()
        built["Message-ID"] = "<" + "0" * 24 + "@shop.example>"
        built["From"] = "Shop Example <news@shop.example>"
        built["To"] = "reader@example.us"
        built["Subject"] = "【广告】 Summer sale: 20% off"
        built["Date"] = "Mon, 02 Jun 2025 12:00:00 +0000"
        built["List-Unsubscribe"] = f"<{UNSUBSCRIBE_MAILTO}>, <{UNSUBSCRIBE_URL}>"
        built["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        built["List-Id"] = "Shop Example newsletter <newsletter.shop.example>"
        built["X-Relay-Campaign"] = CAMPAIGN
        built.set_content(
            "Our summer sale starts today: 20% off selected items.\n\n"
            + "".join(text for _, text in rows[:40])
            + text_footer
        )
        built.add_alternative(
            html_head + "".join(html for html, _ in rows) + html_footer, subtype="html"
        )
        return built.as_bytes(policy=email_policy.SMTP)

    items = 1
    while len(build(items * 2)) <= size:
        items *= 2
    low, high = items, items * 2  # the largest count whose message fits in `size`
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if len(build(middle)) <= size else (low, middle)
    return build(low)


def with_message_id(content: bytes, number: int) -> bytes:
    """The message numbered `number`: its Message-ID, and its HTML title, differ from every
    other one, as personalised mail does, so that nothing decoded for one message can be
    reused for the next."""
    assert content.startswith(b"Message-ID: <" + b"0" * 24)
    numbered = b"Message-ID: <%024d" % number + content[37:]
    return numbered.replace(
        b"<title>Summer sale</title>", b"<title>Summer sale %08d</title>" % number, 1
    )


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Samples:
    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.values)

        def ms(fraction: float) -> float | None:
            return round(percentile(ordered, fraction) * 1000, 3) if ordered else None

        return {
            "n": len(ordered),
            "p50_ms": ms(0.50),
            "p99_ms": ms(0.99),
            "max_ms": round(ordered[-1] * 1000, 3) if ordered else None,
        }


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class TimedAudit:
    """The AuditSink given to the Checkpoint: the real AuditLog, with the time of the last
    append (encoding, write, fsync, the hops to the writer thread and back) kept apart, and the
    time of each os.write + os.fsync in the writer thread (AuditLog._write) recorded."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log
        self.last = 0.0
        self.records = 0
        self.writes = Samples()
        write = log._write

        def timed_write(data: bytes) -> None:
            started = time.perf_counter()
            try:
                write(data)
            finally:
                self.writes.add(time.perf_counter() - started)

        log._write = timed_write

    async def append(self, events: Sequence[AuditEvent]) -> None:
        started = time.perf_counter()
        try:
            await self.log.append(events)
        finally:
            self.last = time.perf_counter() - started
            self.records += len(events)


def lookup_mix(
    rng: random.Random, lookups: int, suppressions: int, consents: int
) -> Iterator[tuple[str, str]]:
    """(kind, address): suppressed, consented and never-seen recipients in equal shares, at
    random indices (so at random places in the store's B-trees)."""
    kinds = [kind for kind, count in ((SUPPRESSED, suppressions), (CONSENTED, consents)) if count]
    kinds.append(UNKNOWN)
    sizes = {SUPPRESSED: suppressions, CONSENTED: consents, UNKNOWN: max(suppressions, consents, 1)}
    for _ in range(lookups):
        kind = rng.choice(kinds)
        yield kind, address(kind, rng.randrange(sizes[kind]))


async def begin(checkpoint: Checkpoint) -> Transaction:
    transaction = await checkpoint.begin(MAIL_FROM, "shop", False, CLIENT_ADDRESS)
    if isinstance(transaction, Reply):
        raise RuntimeError(f"MAIL FROM refused: {transaction}")
    return transaction


@dataclass
class RcptResults:
    mail: Samples = field(default_factory=Samples)
    all: Samples = field(default_factory=Samples)
    cpu: Samples = field(default_factory=Samples)  # event-loop thread CPU per decision
    accepted: Samples = field(default_factory=Samples)
    refused: Samples = field(default_factory=Samples)
    refused_without_audit: Samples = field(default_factory=Samples)
    audit_append: Samples = field(default_factory=Samples)
    by_kind: dict[str, Samples] = field(default_factory=dict)
    by_kind_accepted: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def measure_rcpt(
    checkpoint: Checkpoint, audit: TimedAudit, mix: Iterator[tuple[str, str]], warmup: int
) -> RcptResults:
    """One transaction (MAIL) per recipient, so that every RCPT is a first recipient and the
    452 split of mixed jurisdictions never answers instead of the rules."""
    results = RcptResults()
    clock = time.perf_counter
    for number, (kind, recipient) in enumerate(mix):
        started = clock()
        transaction = await begin(checkpoint)
        begun, cpu = clock(), time.thread_time()
        audit.last = 0.0
        reply = await checkpoint.recipient(transaction, recipient)
        elapsed, cpu = clock() - begun, time.thread_time() - cpu
        if number < warmup:
            if number == warmup - 1:
                audit.writes = Samples()  # from here on, only the timed decisions
            continue
        results.mail.add(begun - started)
        results.all.add(elapsed)
        results.cpu.add(cpu)
        results.by_kind.setdefault(kind, Samples()).add(elapsed)
        results.by_kind_accepted.setdefault(kind, 0)
        if reply.code == 250:
            results.accepted.add(elapsed)
            results.by_kind_accepted[kind] += 1
        elif reply.code >= 500:
            results.refused.add(elapsed)
            results.refused_without_audit.add(elapsed - audit.last)
            results.audit_append.add(audit.last)
        else:
            results.errors.append(f"{kind} <{recipient}>: {reply}")
    return results


@dataclass
class DataResults:
    message: Samples = field(default_factory=Samples)
    parse: Samples = field(default_factory=Samples)
    rules: Samples = field(default_factory=Samples)
    verdicts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def measure_data(
    checkpoint: Checkpoint, engine: PolicyEngine, content: bytes, messages: int, warmup: int
) -> DataResults:
    """Checkpoint.message per message with one consented recipient (US, EU, CN in turn); then
    the same messages parsed and run through engine.evaluate (RCPT and DATA rules) alone."""
    results = DataResults()
    transactions = []
    for index in range(len(TLDS)):
        transaction = await begin(checkpoint)
        reply = await checkpoint.recipient(transaction, address(CONSENTED, index))
        if reply.code != 250:
            raise RuntimeError(f"consented recipient {address(CONSENTED, index)} refused: {reply}")
        transactions.append(transaction)
    clock = time.perf_counter
    for number in range(warmup + messages):
        transaction = transactions[number % len(transactions)]
        raw = with_message_id(content, number)
        started = clock()
        outcome = await checkpoint.message(transaction, raw)
        elapsed = clock() - started
        if number < warmup:
            continue
        results.message.add(elapsed)
        if outcome.refusal is not None:
            results.errors.append(f"<{transaction.recipients[0].address}>: {outcome.refusal}")
        for event in outcome.events:
            if event.rule_id is not None:
                key = f"{event.action} {event.rule_id}"
                results.verdicts[key] = results.verdicts.get(key, 0) + 1

    parser = BytesParser(policy=email_policy.default)
    for number in range(warmup + messages):
        transaction = transactions[number % len(transactions)]
        recipient = transaction.recipients[0]
        raw = with_message_id(content, number)
        started = clock()
        message = parser.parsebytes(raw)
        parsed = clock()
        assert isinstance(message, EmailMessage)
        context = MessageContext(
            now=datetime.now(UTC),
            mail_from=transaction.mail_from,
            recipient=recipient.address,
            jurisdictions=recipient.jurisdictions,
            message_class=MessageClass.COMMERCIAL,
            authenticated_as=transaction.authenticated_as,
            trusted_client=transaction.trusted_client,
            sender=transaction.sender,
            list_id=CAMPAIGN,
            suppression=recipient.suppression,
            consents=recipient.consents,
            message=message,
            raw=raw,
        )
        engine.evaluate(Stage.RCPT, context)
        engine.evaluate(Stage.DATA, context)
        finished = clock()
        if number < warmup:
            continue
        results.parse.add(parsed - started)
        results.rules.add(finished - parsed)
    return results


# -- the run --------------------------------------------------------------------------------


def rcpt_summary(rcpt: RcptResults) -> dict[str, Any]:
    return {
        "mail": rcpt.mail.summary(),
        "all": rcpt.all.summary(),
        "cpu": rcpt.cpu.summary(),
        "accepted": rcpt.accepted.summary(),
        "refused": rcpt.refused.summary(),
        "refused_without_audit": rcpt.refused_without_audit.summary(),
        "audit_append": rcpt.audit_append.summary(),
        "by_kind": {kind: rcpt.by_kind[kind].summary() for kind in sorted(rcpt.by_kind)},
        "accepted_by_kind": dict(sorted(rcpt.by_kind_accepted.items())),
        "errors": len(rcpt.errors),
    }


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suppressions", type=int, default=1_000_000, help="entries to store")
    parser.add_argument("--consents", type=int, default=1_000_000, help="records to store")
    parser.add_argument("--lookups", type=int, default=20_000, help="RCPT decisions to time")
    parser.add_argument("--messages", type=int, default=500, help="DATA evaluations to time")
    parser.add_argument("--size", type=int, default=51_200, help="DATA message size (bytes)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the recipient mix")
    parser.add_argument(
        "--history", type=int, default=10_000_000, help="delivery-history rows for the caps"
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="store file: reused when it holds exactly these counts, else filled (kept)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (store, audit log)"
    )
    args = parser.parse_args(argv)
    if min(args.suppressions, args.consents) < 0 or min(args.lookups, args.messages) < 1:
        parser.error("--suppressions and --consents must be >= 0, --lookups and --messages >= 1")
    if args.consents < len(TLDS):
        parser.error(f"--consents must be >= {len(TLDS)} (the DATA recipients are consented)")
    if args.size < 4096:
        parser.error("--size must be >= 4096")
    return args


def report(figures: dict[str, Any]) -> None:
    def show(value: Any, unit: str = "") -> str:
        if value is None:
            return "n/a"
        if isinstance(value, float):
            return f"{value:,.3f}{unit}" if unit == " ms" else f"{value:,.1f}{unit}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}{unit}"
        return f"{value}{unit}"

    def latency(label: str, summary: dict[str, Any]) -> None:
        print(
            f"{label:<34}p50 {show(summary['p50_ms'], ' ms')}  p99 {show(summary['p99_ms'], ' ms')}"
            f"  max {show(summary['max_ms'], ' ms')}  (n={show(summary['n'])})"
        )

    rcpt, data = figures["rcpt"], figures["data"]
    print(f"suppressions:                     {show(figures['suppressions'])}")
    print(f"consents:                         {show(figures['consents'])}")
    print(f"store file:                       {show(figures['store_mib'], ' MiB')}")
    if figures["reused_store"]:
        print("load time:                        reused store")
    else:
        load = figures["load_s"]
        print(
            f"load time:                        {show(load['total'], ' s')}"
            f" (suppressions {show(load['suppressions'], ' s')},"
            f" consents {show(load['consents'], ' s')})"
        )
    latency("MAIL (sender profile)", rcpt["mail"])
    latency("RCPT decision, all", rcpt["all"])
    latency("  CPU of the event-loop thread", rcpt["cpu"])
    latency("RCPT decision, accepted", rcpt["accepted"])
    latency("RCPT decision, refused", rcpt["refused"])
    latency("  refused, without audit append", rcpt["refused_without_audit"])
    latency("  audit append (await)", rcpt["audit_append"])
    latency("    of which os.write + os.fsync", figures["audit_write"])
    for kind, summary in rcpt["by_kind"].items():
        accepted = rcpt["accepted_by_kind"][kind]
        latency(f"RCPT {kind} ({accepted:,} accepted)", summary)
    print(
        f"RCPT p99 target:                  < {TARGET_P99_MS} ms:"
        f" {'met' if figures['rcpt_target_met'] else 'missed'}"
    )
    caps = figures["rcpt_caps"]
    print(
        f"delivery history:                 {show(figures['history_rows'])} rows,"
        f" {show(figures['history_mib'], ' MiB')},"
        f" loaded in {show(figures['history_load_s'], ' s')}"
    )
    latency("RCPT with caps, all", caps["all"])
    latency("RCPT with caps, accepted", caps["accepted"])
    latency("RCPT with caps, refused", caps["refused"])
    for kind, summary in caps["by_kind"].items():
        latency(f"RCPT with caps {kind}", summary)
    print(
        f"RCPT with caps p99 target:        < {TARGET_P99_MS} ms:"
        f" {'met' if figures['rcpt_caps_target_met'] else 'missed'}"
    )
    print(f"DATA message size:                {show(data['size'], ' bytes')}")
    latency("DATA Checkpoint.message", data["message"])
    latency("DATA parse only", data["parse"])
    latency("DATA rules only (RCPT + DATA)", data["rules"])
    print(f"DATA messages refused:            {show(data['refused'])}")
    print(f"peak RSS after load:              {show(figures['peak_rss_after_load_mib'], ' MiB')}")
    print(f"peak RSS:                         {show(figures['peak_rss_mib'], ' MiB')}")
    print(json.dumps(figures, separators=(",", ":"), ensure_ascii=False))


async def benchmark(args: argparse.Namespace, directory: Path) -> int:
    hasher = AddressHasher(KEY)
    db_path = args.db if args.db is not None else directory / "stores.sqlite3"
    wanted = (args.suppressions, args.consents, True)
    found = stored_counts(db_path, hasher) if db_path.exists() else None
    reuse = found == wanted
    if db_path.exists() and not reuse and found not in (None, (0, 0, True)):
        print(
            f"benchmark: {db_path} holds {found[0]:,} suppressions and {found[1]:,} consents"
            f" (wanted {args.suppressions:,} and {args.consents:,}) or other recipients;"
            " remove it or name another --db",
            file=sys.stderr,
        )
        return 2
    if db_path.exists() and found is None:
        print(f"benchmark: {db_path} is not a relay store", file=sys.stderr)
        return 2

    policies = load_policies(policy_paths(None))
    engine = PolicyEngine(policies)
    stores = SqliteStores(db_path, hasher, keep_addresses=True)
    audit_log = AuditLog(directory / "audit", node="bench")
    await stores.open()
    try:
        load_s: dict[str, float] = {}
        if not reuse:
            load_s = await prepare(stores, args.suppressions, args.consents)
            load_s["total"] = load_s["suppressions"] + load_s["consents"]
        else:
            print(f"reusing {db_path}", file=sys.stderr)
            await stores.put_senders([SENDER])
        rss_after_load = peak_rss_mib()
        await audit_log.open()
        audit = TimedAudit(audit_log)
        checkpoint = Checkpoint(engine, stores, audit, hasher.hash, keep_addresses=True)
        rng = random.Random(args.seed)
        warmup = min(WARMUP, args.lookups)
        mix = lookup_mix(rng, warmup + args.lookups, args.suppressions, args.consents)
        print(f"timing {args.lookups:,} RCPT decisions", file=sys.stderr)
        rcpt = await measure_rcpt(checkpoint, audit, mix, warmup)
        history_path = directory / "history.sqlite3"
        history = SqliteHistory(history_path, hasher, history_window(policies))
        await history.open()  # the schema
        await history.close()
        print(f"loading {args.history:,} delivery-history rows", file=sys.stderr)
        history_load_s = await asyncio.to_thread(
            load_history, history_path, hasher, args.history, args.consents
        )
        await history.open()
        try:
            capped = Checkpoint(
                engine, stores, audit, hasher.hash, keep_addresses=True, history=history
            )
            mix = lookup_mix(
                random.Random(args.seed), warmup + args.lookups, args.suppressions, args.consents
            )
            print(f"timing {args.lookups:,} RCPT decisions with caps", file=sys.stderr)
            rcpt_caps = await measure_rcpt(capped, audit, mix, warmup)
        finally:
            await history.close()
        content = build_message(args.size)
        print(f"timing {args.messages:,} DATA evaluations", file=sys.stderr)
        data = await measure_data(
            checkpoint, engine, content, args.messages, min(20, args.messages)
        )
    finally:
        with contextlib.suppress(Exception):
            await audit_log.close()
        await stores.close()

    for error in (rcpt.errors + rcpt_caps.errors + data.errors)[:10]:
        print(f"error: {error}", file=sys.stderr)
    store_bytes = sum(
        path.stat().st_size
        for path in (db_path, db_path.with_name(db_path.name + "-wal"))
        if path.exists()
    )
    rcpt_figures = rcpt_summary(rcpt)
    caps_figures = rcpt_summary(rcpt_caps)
    p99 = rcpt_figures["all"]["p99_ms"]
    caps_p99 = caps_figures["all"]["p99_ms"]
    figures: dict[str, Any] = {
        "suppressions": args.suppressions,
        "consents": args.consents,
        "lookups": args.lookups,
        "messages": args.messages,
        "store_mib": round(store_bytes / MIB, 1),
        "reused_store": reuse,
        "load_s": {key: round(value, 1) for key, value in load_s.items()} or None,
        "rcpt": rcpt_figures,
        "history_rows": args.history,
        "history_load_s": round(history_load_s, 1),
        "history_mib": round(history_path.stat().st_size / MIB, 1),
        "rcpt_caps": caps_figures,
        "rcpt_caps_target_met": caps_p99 is not None and caps_p99 < TARGET_P99_MS,
        "rcpt_target_met": p99 is not None and p99 < TARGET_P99_MS,
        "audit_records": audit.records,
        "audit_write": audit.writes.summary(),
        "data": {
            "size": len(content),
            "message": data.message.summary(),
            "parse": data.parse.summary(),
            "rules": data.rules.summary(),
            "refused": len(data.errors),
            "verdicts_per_message": {
                key: round(count / args.messages, 2) for key, count in sorted(data.verdicts.items())
            },
        },
        "peak_rss_after_load_mib": rss_after_load,
        "peak_rss_mib": peak_rss_mib(),
    }
    report(figures)
    return 0 if not rcpt.errors and not rcpt_caps.errors and not data.errors else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="relay-bench-policy-"))
    try:
        return asyncio.run(benchmark(args, directory))
    finally:
        if args.keep:
            print(f"kept {directory}", file=sys.stderr)
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
