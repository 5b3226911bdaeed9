"""Check an audit log's chain, and export its records for compliance officers.

`verify` walks every file of a log in order and stops at the first record that is not what the
chain says it must be: a line that is not JSON or is cut short, a seq that is not the next one
(records deleted or reordered), a `prev` that is not the hash of the record before (records
deleted, reordered or replaced), a `hash` that does not match the content (an edit). Removing
whole records from the end of the log leaves a valid, shorter chain: compare `last_hash` with one
noted elsewhere (e.g. a previous export) to catch that.

`export` writes records as stored (jsonl: an export of a whole log verifies like the log) or as
CSV with one column per field; several nodes' logs are merged by time. `relay audit export` and
the admin API's streamed export share its parts: `merged_records` reads (a record at a time,
never the whole log) and `export_lines` formats.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from relay.audit.log import GENESIS, audit_files, canonical_json, last_line, record_hash
from relay.audit.records import AuditEvent
from relay.errors import AuditError

__all__ = [
    "CSV_COLUMNS",
    "BadRecord",
    "ExportFormat",
    "StoredRecord",
    "VerifyResult",
    "export",
    "export_lines",
    "merged_records",
    "stored_records",
    "verify",
]

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


def verify(directory: Path, *, live: bool = False) -> VerifyResult:
    """Check the whole chain in `directory`; raise AuditError when it cannot be read at all.

    `live`: the log is being appended to (`relay serve` runs): a last line without an end of
    line in the last file is a record being written, not a break, and is left for the next
    check. The files are those there when the check starts."""
    expected_seq, prev = 1, GENESIS
    files = _files(directory)
    for path in files:
        try:
            with open(path, "rb") as handle:
                for number, raw in enumerate(handle, 1):
                    if live and path == files[-1] and not raw.endswith(b"\n"):
                        break
                    seq, problem, prev_next = _check(raw, expected_seq, prev)
                    if problem is not None:
                        bad = BadRecord(path, number, seq, problem)
                        return VerifyResult(directory, expected_seq - 1, prev, bad)
                    expected_seq, prev = expected_seq + 1, prev_next
        except OSError as exc:
            raise AuditError(f"{path}: cannot read the audit log: {exc}") from exc
    return VerifyResult(directory, expected_seq - 1, prev)


# -- reading and exporting -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record as read back: its time, its fields, and its line as stored (no end of line)."""

    time: datetime
    record: dict[str, Any]
    line: str


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _last_seq(path: Path) -> int | None:
    """The seq of the last complete record of `path` (None when it cannot be told)."""
    line = last_line(path)
    if not line:
        return None
    try:
        seq = json.loads(line).get("seq")
    except (ValueError, AttributeError):
        return None
    return seq if type(seq) is int else None


def stored_records(directory: Path, after_seq: int = 0) -> Iterator[StoredRecord]:
    """Every record of one log in chain order (those with seq > `after_seq`: files that end
    before it are not read). A last line without an end of line is a write in progress (or cut
    short, which `verify` reports) and is left out. Reads as it goes: never the whole log."""
    files = _files(directory)
    for path in files:
        if after_seq and path != files[-1]:
            last = _last_seq(path)
            if last is not None and last <= after_seq:
                continue
        try:
            with open(path, "rb") as handle:
                for number, raw in enumerate(handle, 1):
                    if not raw.endswith(b"\n") and path == files[-1]:
                        return
                    try:
                        record = json.loads(raw)
                        moment = _utc(datetime.fromisoformat(record["time"]))
                        seq = record["seq"]
                    except (ValueError, TypeError, KeyError):
                        raise AuditError(
                            f"{path}:{number}: not an audit record (run `relay audit verify`)"
                        ) from None
                    if type(seq) is int and seq <= after_seq:
                        continue
                    yield StoredRecord(moment, record, raw.rstrip(b"\n").decode("utf-8"))
        except OSError as exc:
            raise AuditError(f"{path}: cannot read the audit log: {exc}") from exc


def merged_records(
    directory: Path | Sequence[Path],
    since: datetime | None = None,
    until: datetime | None = None,
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> Iterator[StoredRecord]:
    """The records with since <= time < until (naive datetimes are UTC) for which `where` holds;
    several directories (one per node) are merged by time (equal times: in the order of the
    directories). Each log's records keep their chain order, so the merge is in time order as
    long as each log is; a record stored after a later-timed one of its own log stays after it
    (reading a record at a time cannot move it)."""
    directories = [directory] if isinstance(directory, Path) else list(directory)
    logs = [stored_records(path) for path in directories]
    merged = logs[0] if len(logs) == 1 else heapq.merge(*logs, key=lambda stored: stored.time)
    since = _utc(since) if since is not None else None
    until = _utc(until) if until is not None else None
    for stored in merged:
        if since is not None and stored.time < since:
            continue
        if until is not None and stored.time >= until:
            continue
        if where is None or where(stored.record):
            yield stored


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    text = canonical_json(value) if isinstance(value, dict | list) else str(value)
    # Values come partly from senders' headers: keep a spreadsheet from running one as a
    # formula (OWASP CSV injection). The JSON Lines export keeps the stored values exactly.
    return "'" + text if text[:1] in _FORMULA_STARTS else text


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _CsvLine:
    """csv.writer into a string, one row at a time."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def __call__(self, row: Sequence[str]) -> str:
        self._writer.writerow(row)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text


def export_lines(records: Iterable[StoredRecord], fmt: ExportFormat) -> Iterator[str]:
    """The export of `records`, a line at a time (with its end of line): as stored for jsonl
    (an export of a whole log verifies like the log), a header and a row per record for csv."""
    if fmt == "jsonl":
        for stored in records:
            yield stored.line + "\n"
        return
    line = _CsvLine()
    yield line(CSV_COLUMNS)
    for stored in records:
        yield line([_csv_value(stored.record.get(column)) for column in CSV_COLUMNS])


def export(
    directory: Path | Sequence[Path],
    since: datetime | None,
    until: datetime | None,
    fmt: ExportFormat,
    out: TextIO,
) -> int:
    """Write the records with since <= time < until (naive datetimes are UTC) to `out` and
    return how many. Several directories (one per node) are merged by time."""
    count = 0

    def counted() -> Iterator[StoredRecord]:
        nonlocal count
        for stored in merged_records(directory, since, until):
            count += 1
            yield stored

    for text in export_lines(counted(), fmt):
        out.write(text)
    return count
