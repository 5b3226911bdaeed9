"""The append-only, hash-chained audit log of one node.

Layout under the audit directory:

    audit-000001.jsonl   records, one canonical JSON object a line; the next file starts when
    audit-000002.jsonl   this one has grown past `max_file_size` (the chain continues across files)
    .lock                held (flock) by the one process appending

A stored record is an AuditEvent's fields plus

    node   the node that decided (chains of several nodes can be merged by export)
    seq    1, 2, 3, ... continuous across the whole log
    prev   `hash` of the record before it; GENESIS for seq 1
    hash   SHA-256 (hex) of the canonical JSON of the record without `hash`

Canonical JSON: sorted keys, no spaces, UTF-8 (not \\u escapes), no NaN. `append` returns only when
its records are written and fsync'd, so a caller may act on a decision (send the 250) after it
returns. Appends that arrive while a write is in progress are committed together by the next
write (group commit): one write and one fsync for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from relay.audit.records import AuditEvent
from relay.durable import fsync_directory
from relay.errors import AuditError
from relay.group_commit import GroupCommit

__all__ = [
    "GENESIS",
    "MAX_FILE_SIZE",
    "AuditLog",
    "audit_files",
    "canonical_json",
    "last_line",
    "record_hash",
]

GENESIS = "0" * 64
MAX_FILE_SIZE = 64 * 1024 * 1024

_FILE_NAME = re.compile(r"audit-(\d{6,})\.jsonl")
_TAIL_BLOCK = 64 * 1024


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed and stored."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of `record` without its `hash` field."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def audit_files(directory: Path) -> list[Path]:
    """The log files of `directory` in chain order (other files are ignored)."""
    logs = [path for path in directory.iterdir() if _FILE_NAME.fullmatch(path.name)]
    return sorted(logs, key=_file_number)


def _file_name(number: int) -> str:
    return f"audit-{number:06d}.jsonl"


def _file_number(path: Path) -> int:
    match = _FILE_NAME.fullmatch(path.name)
    assert match is not None
    return int(match.group(1))


def last_line(path: Path) -> bytes | None:
    """The last line of `path` including its newline (b"" when the file does not end with one:
    a record cut short), or None for an empty file."""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        if end == 0:
            return None
        handle.seek(end - 1)
        if handle.read(1) != b"\n":
            return b""
        tail = b""
        position = end
        while position > 0:
            step = min(_TAIL_BLOCK, position)
            position -= step
            handle.seek(position)
            tail = handle.read(step) + tail
            start = tail.rfind(b"\n", 0, len(tail) - 1)
            if start >= 0:
                return tail[start + 1 :]
        return tail


class AuditLog:
    """Appends AuditEvents to the chain in `directory`. Use from one event loop; one process per
    directory (enforced with a lock file)."""

    def __init__(
        self, directory: Path, *, node: str | None = None, max_file_size: int = MAX_FILE_SIZE
    ) -> None:
        self.directory = directory
        self.node = node or socket.gethostname()
        self.max_file_size = max_file_size
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-writer")
        # Chain state; touched only in the writer thread once open.
        self._seq = 0
        self._prev = GENESIS
        self._number = 0
        self._fd: int | None = None
        self._size = 0
        self._lock_fd: int | None = None
        self._broken: str | None = None
        # One write and one fsync for the records of every transaction waiting.
        self._commits: GroupCommit[Sequence[AuditEvent], list[str]] = GroupCommit(
            self._commit_batch, "audit-writer"
        )
        self._open = False
        self._closed = False

    # -- life cycle -------------------------------------------------------------------------

    async def open(self) -> None:
        """Take the directory, read the tail of the log and continue its chain. Refuse (AuditError)
        when the last record is cut short or does not verify."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._take_directory)
        self._open = True

    async def close(self) -> None:
        """Commit what is pending, then release the files. Closing twice does nothing."""
        if self._closed:
            return
        self._closed = True
        self._open = False
        await self._commits.drain()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    @property
    def last_seq(self) -> int:
        """The seq of the last record committed (0 for an empty log)."""
        return self._seq

    @property
    def last_hash(self) -> str:
        """The hash of the last record committed (GENESIS for an empty log): note it elsewhere
        to anchor the chain."""
        return self._prev

    def _take_directory(self) -> None:
        try:
            if not self.directory.is_dir():
                self.directory.mkdir(parents=True, exist_ok=True)
                fsync_directory(self.directory.parent)
            self._lock()
            files = audit_files(self.directory)
            for path in reversed(files):
                line = last_line(path)
                if line is not None:
                    self._continue_from(path, line)
                    break
            if files:
                last = files[-1]
                self._number = _file_number(last)
                self._fd = os.open(last, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
                self._size = os.fstat(self._fd).st_size
            else:
                self._start_file(1)
        except OSError as exc:
            self._close()
            raise AuditError(f"cannot open the audit log in {self.directory}: {exc}") from exc
        except AuditError:
            self._close()
            raise

    def _lock(self) -> None:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AuditError(
                f"{self.directory}: another process is appending to this audit log"
            ) from None
        self._lock_fd = fd

    def _continue_from(self, path: Path, line: bytes) -> None:
        refuse = f"{path}: the last record {{}}; refusing to append (run `relay audit verify`)"
        if not line:
            raise AuditError(refuse.format("is cut short (no end of line)"))
        try:
            record = json.loads(line)
        except ValueError:
            raise AuditError(refuse.format("is not valid JSON")) from None
        if not isinstance(record, dict):
            raise AuditError(refuse.format("is not a JSON object"))
        seq, stored_hash = record.get("seq"), record.get("hash")
        if type(seq) is not int or seq < 1 or not isinstance(stored_hash, str):
            raise AuditError(refuse.format("has no valid seq or hash"))
        if record_hash(record) != stored_hash:
            raise AuditError(refuse.format(f"(seq {seq}) does not match its hash"))
        self._seq, self._prev = seq, stored_hash

    def _start_file(self, number: int) -> None:
        path = self.directory / _file_name(number)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._number, self._size = fd, number, 0

    def _close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None

    # -- appending --------------------------------------------------------------------------

    async def append(self, events: Sequence[AuditEvent]) -> list[str]:
        """Add `events` to the chain, in order; return their records' hashes (what names a
        record for good, e.g. in the suppression entry it caused) when they are on disk
        (fsync'd). Raise AuditError when they could not be written: the decisions must not be
        acted on."""
        if not self._open:
            raise AuditError(f"{self.directory}: the audit log is not open")
        if not events:
            return []
        return await self._commits.submit(events)

    async def _commit_batch(
        self, requests: list[Sequence[AuditEvent]]
    ) -> list[list[str] | Exception]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._thread, self._commit, requests)
        except Exception as exc:  # a bug must not leave appenders waiting forever
            raise AuditError(f"{self.directory}: audit log writer failed: {exc!r}") from exc

    def _commit(self, requests: list[Sequence[AuditEvent]]) -> list[list[str] | Exception]:
        """Encode and chain every request, write them with one write and one fsync. A request
        that cannot be encoded fails alone; a failed write fails them all and leaves the chain
        where it was. A request that succeeds gets its records' hashes."""
        if self._broken is not None:
            return [AuditError(self._broken)] * len(requests)
        outcomes: list[list[str] | Exception] = []
        lines: list[bytes] = []
        seq, prev = self._seq, self._prev
        for events in requests:
            try:
                encoded, hashes = self._encode(events, seq, prev)
            except Exception as exc:  # e.g. inputs that JSON cannot encode: fail this request
                outcomes.append(AuditError(f"cannot encode an audit record: {exc}"))
                continue
            lines.extend(encoded)
            seq, prev = seq + len(events), hashes[-1]
            outcomes.append(hashes)
        if not lines:
            return outcomes
        try:
            self._write(b"".join(lines))
        except OSError as exc:
            error = AuditError(f"cannot write the audit log in {self.directory}: {exc}")
            return [outcome if isinstance(outcome, AuditError) else error for outcome in outcomes]
        self._seq, self._prev = seq, prev
        return outcomes

    def _encode(
        self, events: Sequence[AuditEvent], seq: int, prev: str
    ) -> tuple[list[bytes], list[str]]:
        lines, hashes = [], []
        for event in events:
            seq += 1
            record = event.as_dict()
            record.update(node=self.node, seq=seq, prev=prev)
            prev = hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()
            record["hash"] = prev
            lines.append(canonical_json(record).encode("utf-8") + b"\n")
            hashes.append(prev)
        return lines, hashes

    def _write(self, data: bytes) -> None:
        if self._size >= self.max_file_size:
            self._start_file(self._number + 1)
        assert self._fd is not None
        fd, before = self._fd, self._size
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            # Take back a partial write so that the chain can go on from the last good record.
            try:
                os.ftruncate(fd, before)
                os.fsync(fd)
            except OSError:
                self._broken = (
                    f"{self.directory}: a failed write left a partial record behind ({exc});"
                    " no further records can be appended"
                )
            raise
        self._size = before + len(data)
