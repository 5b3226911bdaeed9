"""Crash-safe file primitives shared by the spool, the feedback inbox and the audit log."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["fsync_directory", "write_durably"]


def fsync_directory(path: Path) -> None:
    """Make the creation, rename or removal of entries in `path` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(tmp: Path, final: Path, chunks: Iterable[bytes]) -> None:
    """Write `chunks` to `tmp`, fsync it, rename it to `final` and fsync `final`'s directory:
    when this returns, `final` is complete and survives a power cut; it never exists half
    written. Raises OSError (and removes `tmp`) on failure."""
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, final)
        fsync_directory(final.parent)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
