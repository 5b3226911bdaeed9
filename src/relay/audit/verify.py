"""Check an audit log's chain, and export its records for compliance officers.

`verify` walks every file of a log in order and stops at the first record that is not what the
chain says it must be: a line that is not JSON or is cut short, a seq that is not the next one
(records deleted or reordered), a `prev` that is not the hash of the record before (records
deleted, reordered or replaced), a `hash` that does not match the content (an edit). Removing
whole records from the end of the log leaves a valid, shorter chain: compare `last_hash` with one
noted elsewhere (e.g. a previous export) to catch that.

`export` writes records as stored (jsonl: an export of a whole log verifies like the log) or as
CSV with one column per field; several nodes' logs are merged by time.
"""

from __future__ import annotations

import csv
import heapq
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from relay.audit.log import GENESIS, audit_files, canonical_json, record_hash
from relay.audit.records import AuditEvent
from relay.errors import AuditError

__all__ = ["CSV_COLUMNS", "BadRecord", "ExportFormat", "VerifyResult", "export", "verify"]

ExportFormat = Literal["csv", "jsonl"]

CSV_COLUMNS = ("node", "seq", *(f.name for f in fields(AuditEvent)), "prev", "hash")


@dataclass(frozen=True, slots=True)
class BadRecord:
    """The first record that breaks the chain: where it is and what is wrong with it."""

    path: Path
    line: int
    seq: int  # the record's own seq, or the one expected there when it has none
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: record seq {self.seq}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    directory: Path
    records: int  # records that verified (all of them when ok)
    last_hash: str  # hash of the last record that verified; GENESIS for none
    bad: BadRecord | None = None

    @property
    def ok(self) -> bool:
        return self.bad is None


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise AuditError(f"{directory}: no audit log there (not a directory)")
    try:
        return audit_files(directory)
    except OSError as exc:
        raise AuditError(f"{directory}: cannot list the audit log: {exc}") from exc


def _check(raw: bytes, expected_seq: int, prev: str) -> tuple[int, str | None, str]:
    """(the record's seq, the problem or None, its hash) for one stored line."""
    if not raw.endswith(b"\n"):
        return expected_seq, "record cut short (no end of line)", ""
    try:
        record = json.loads(raw)
    except ValueError:
        return expected_seq, "not valid JSON", ""
    if not isinstance(record, dict):
        return expected_seq, "not a JSON object", ""
    seq, stored_prev, stored_hash = record.get("seq"), record.get("prev"), record.get("hash")
    if type(seq) is not int:
        return expected_seq, "no valid seq field", ""
    if not isinstance(stored_prev, str) or not isinstance(stored_hash, str):
        return seq, "no valid prev or hash field", ""
    if record_hash(record) != stored_hash:
        return seq, "content does not match its hash (record edited)", ""
    if seq != expected_seq:
        return seq, f"expected seq {expected_seq} here (records deleted or reordered)", ""
    if stored_prev != prev:
        what = "the genesis value" if expected_seq == 1 else f"the hash of record seq {seq - 1}"
        return seq, f"prev is not {what} (records deleted, reordered or replaced)", ""
    if canonical_json(record).encode("utf-8") + b"\n" != raw:
        return seq, "line is not in canonical form (record edited)", ""
    return seq, None, stored_hash


def verify(directory: Path) -> VerifyResult:
    """Check the whole chain in `directory`; raise AuditError when it cannot be read at all."""
    expected_seq, prev = 1, GENESIS
    for path in _files(directory):
        try:
            with open(path, "rb") as handle:
                for number, raw in enumerate(handle, 1):
                    seq, problem, prev_next = _check(raw, expected_seq, prev)
                    if problem is not None:
                        bad = BadRecord(path, number, seq, problem)
                        return VerifyResult(directory, expected_seq - 1, prev, bad)
                    expected_seq, prev = expected_seq + 1, prev_next
        except OSError as exc:
            raise AuditError(f"{path}: cannot read the audit log: {exc}") from exc
    return VerifyResult(directory, expected_seq - 1, prev)


# -- export ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stored:
    time: datetime
    record: dict[str, Any]
    line: str  # as stored, without the end of line


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _stored(directory: Path) -> Iterator[_Stored]:
    """Every record of one log in chain order. A last line without an end of line is a write in
    progress (or cut short, which `verify` reports) and is left out."""
    files = _files(directory)
    for path in files:
        try:
            with open(path, "rb") as handle:
                for number, raw in enumerate(handle, 1):
                    if not raw.endswith(b"\n") and path == files[-1]:
                        return
                    try:
                        record = json.loads(raw)
                        moment = _utc(datetime.fromisoformat(record["time"]))
                    except (ValueError, TypeError, KeyError):
                        raise AuditError(
                            f"{path}:{number}: not an audit record (run `relay audit verify`)"
                        ) from None
                    yield _Stored(moment, record, raw.rstrip(b"\n").decode("utf-8"))
        except OSError as exc:
            raise AuditError(f"{path}: cannot read the audit log: {exc}") from exc


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    text = canonical_json(value) if isinstance(value, dict | list) else str(value)
    # Values come partly from senders' headers: keep a spreadsheet from running one as a
    # formula (OWASP CSV injection). The JSON Lines export keeps the stored values exactly.
    return "'" + text if text[:1] in _FORMULA_STARTS else text


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export(
    directory: Path | Sequence[Path],
    since: datetime | None,
    until: datetime | None,
    fmt: ExportFormat,
    out: TextIO,
) -> int:
    """Write the records with since <= time < until (naive datetimes are UTC) to `out` and
    return how many. Several directories (one per node) are merged by time."""
    directories = [directory] if isinstance(directory, Path) else list(directory)
    logs = [_stored(path) for path in directories]
    merged = logs[0] if len(logs) == 1 else heapq.merge(*logs, key=lambda stored: stored.time)
    since = _utc(since) if since is not None else None
    until = _utc(until) if until is not None else None
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for stored in merged:
        if (since is not None and stored.time < since) or (
            until is not None and stored.time >= until
        ):
            continue
        if writer is None:
            out.write(stored.line + "\n")
        else:
            writer.writerow([_csv_value(stored.record.get(column)) for column in CSV_COLUMNS])
        count += 1
    return count
