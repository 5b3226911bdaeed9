"""What every SQLite-backed store of relay shares: how a connection is opened (WAL, autocommit,
a large page cache) and the one place where sqlite3 errors become StoreUnavailable."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from relay.errors import StoreUnavailable

__all__ = ["connect", "store_errors"]


async def connect(path: Path) -> aiosqlite.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL journal, synchronous
    NORMAL (durable at checkpoints, never corrupt), temporary tables in memory."""
    connection = aiosqlite.connect(path, isolation_level=None, timeout=10.0)
    try:
        db = await connection
    except BaseException:
        # aiosqlite stops its worker thread without waiting for it; the thread then answers on
        # this event loop, which a short-lived command (the CLI) may have closed by then: wait
        # for the thread, so that a failed open is one error and not a stray traceback.
        worker = getattr(connection, "_thread", None)
        if worker is not None:
            await asyncio.to_thread(worker.join, 5.0)
        raise
    try:
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA temp_store=MEMORY",
            "PRAGMA cache_size=-65536",  # KiB: keeps the upper index levels in memory
        ):
            await db.execute(pragma)
    except BaseException:
        await db.close()
        raise
    return db


@asynccontextmanager
async def store_errors(path: Path, doing: str) -> AsyncIterator[None]:
    """Turn sqlite3 and file-system errors into StoreUnavailable naming the file and what was
    being done."""
    try:
        yield
    except (sqlite3.Error, OSError, ValueError) as exc:
        # ValueError: a closed connection (aiosqlite) or a stored value that no longer parses
        # (a damaged row); either way the store cannot answer.
        raise StoreUnavailable(f"{path}: cannot {doing}: {exc}") from exc
