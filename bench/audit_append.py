"""Audit log append throughput: C concurrent appenders (like SMTP sessions) each append N single
records, every append awaiting its fsync; report records/s and fsyncs (group commits) used.

    .venv/bin/python bench/audit_append.py --appenders 200 --records 50 [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from relay.audit.log import AuditLog
from relay.audit.records import AuditEvent
from relay.audit.verify import verify


def _event(session: int, index: int) -> AuditEvent:
    return AuditEvent(
        time="2024-05-01T12:00:00+00:00",
        stage="rcpt",
        action="accept",
        mail_from="news@sender.example",
        recipient_hash=f"{session:08x}{index:056x}",
        recipient=f"user{session}-{index}@example.org",
        rule_id="US-OPTOUT-PRESENT",
        citation="15 U.S.C. 7704(a)(3)",
        inputs={"consent_id": f"c-{session}-{index}", "suppressed": False},
        relay_version="0.1.0",
    )


async def _run(directory: Path, appenders: int, records: int) -> None:
    log = AuditLog(directory, node="bench")
    await log.open()
    commits = 0
    original = log._write

    def counting_write(data: bytes) -> None:
        nonlocal commits
        commits += 1
        original(data)

    log._write = counting_write

    async def session(number: int) -> None:
        for index in range(records):
            await log.append([_event(number, index)])

    started = time.perf_counter()
    await asyncio.gather(*(session(number) for number in range(appenders)))
    elapsed = time.perf_counter() - started
    await log.close()
    total = appenders * records
    print(
        f"{total} records from {appenders} concurrent appenders in {elapsed:.2f}s:"
        f" {total / elapsed:,.0f} records/s, {commits} write+fsync ({total / commits:.1f}/fsync)"
    )
    result = verify(directory)
    print(f"verify: ok={result.ok} records={result.records}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--appenders", type=int, default=200)
    parser.add_argument("--records", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    if args.dir is not None:
        asyncio.run(_run(args.dir, args.appenders, args.records))
        return
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as directory:
        asyncio.run(_run(Path(directory) / "audit", args.appenders, args.records))


if __name__ == "__main__":
    main()
