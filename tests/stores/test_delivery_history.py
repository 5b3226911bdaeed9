"""SqliteHistory on real SQLite files: what a recipient got from a sender since a time, pruning
beyond the kept period, and StoreUnavailable when the file cannot be used."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from relay.errors import StoreUnavailable
from relay.stores.history import Delivery, SqliteHistory
from tests.stores.helpers import HASHER, WHEN

T = TypeVar("T")
KEEP = timedelta(days=30)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "history.sqlite"


def run_history(path: Path, action: Callable[[SqliteHistory], Awaitable[T]]) -> T:
    async def run() -> T:
        history = SqliteHistory(path, HASHER, KEEP)
        await history.open()
        try:
            return await action(history)
        finally:
            await history.close()

    return asyncio.run(run())


def delivery(
    address: str,
    ago: timedelta,
    sender_id: str = "acme",
    queue_id: str = "q1",
    **fields: str | None,
) -> Delivery:
    values = {"list_id": "news", "content_hash": "0f" * 16} | fields
    return Delivery(
        sender_id,
        HASHER.hash(address),
        WHEN - ago,
        queue_id,
        values["list_id"],
        values["content_hash"],
    )


def test_recent_deliveries_of_one_recipient_and_sender_oldest_first_survive_reopen(db):
    ann = [delivery("ann@example.org", timedelta(hours=h), queue_id=f"q{h}") for h in (1, 30, 5)]
    others = [
        delivery("bob@example.org", timedelta(hours=1)),
        delivery("ann@example.org", timedelta(hours=1), sender_id="other"),
        delivery("ann@example.org", timedelta(days=3), queue_id="old"),
    ]
    run_history(db, lambda history: history.record(ann + others))

    found = run_history(
        db, lambda history: history.recent("ANN@example.org", "acme", WHEN - timedelta(days=2))
    )
    assert found == sorted(ann, key=lambda d: d.at)


def test_no_list_and_no_content_hash_round_trip(db):
    bare = delivery("ann@example.org", timedelta(hours=1), list_id=None, content_hash=None)
    run_history(db, lambda history: history.record([bare]))
    since = WHEN - timedelta(days=1)
    assert run_history(db, lambda history: history.recent("ann@example.org", "acme", since)) == [
        bare
    ]


def test_recording_the_same_delivery_again_keeps_one_row(db):
    one = delivery("ann@example.org", timedelta(hours=1))
    run_history(db, lambda history: history.record([one]))
    run_history(db, lambda history: history.record([one]))
    since = WHEN - timedelta(days=1)
    assert len(run_history(db, lambda h: h.recent("ann@example.org", "acme", since))) == 1


def test_recording_prunes_rows_older_than_the_kept_period(db):
    old = delivery("ann@example.org", KEEP + timedelta(hours=1), queue_id="old")
    kept = delivery("ann@example.org", KEEP - timedelta(hours=1), queue_id="kept")
    new = delivery("bob@example.org", timedelta(0), queue_id="new")

    async def record_then_read(history: SqliteHistory) -> list[Delivery]:
        await history.record([old, kept])  # pruning is relative to the newest row recorded
        await history.prune(WHEN - timedelta(days=400))  # nothing that old
        await history.record([new])
        return await history.recent("ann@example.org", "acme", WHEN - timedelta(days=400))

    assert run_history(db, record_then_read) == [kept]
    assert run_history(db, lambda history: history.prune(WHEN)) == 1  # `kept` only


def test_an_unusable_file_is_store_unavailable(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match=r"history\.sqlite"):
        run_history(path, lambda history: history.recent("ann@example.org", "acme", WHEN))


def test_a_closed_history_is_store_unavailable(db):
    async def after_close() -> None:
        history = SqliteHistory(db, HASHER, KEEP)
        await history.open()
        await history.close()
        await history.recent("ann@example.org", "acme", WHEN)

    with pytest.raises(StoreUnavailable, match="not open"):
        asyncio.run(after_close())
