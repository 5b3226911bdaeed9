"""Group commit: concurrent submissions are committed together, each caller gets its own
outcome, a failure fails only what it should, and drain waits for everything submitted."""

from __future__ import annotations

import asyncio

import pytest

from relay.group_commit import GroupCommit


class Store:
    def __init__(self, fail_batch: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_batch = fail_batch

    async def commit(self, batch: list[int]) -> list[int | Exception]:
        await asyncio.sleep(0.01)  # the write takes a while: later submissions queue up
        self.batches.append(batch)
        if len(self.batches) == self.fail_batch:
            raise OSError("disk full")
        return [ValueError(f"odd {item}") if item % 2 else item * 10 for item in batch]


def test_concurrent_submissions_share_commits_and_get_their_own_outcomes() -> None:
    store = Store()

    async def go() -> list[int | BaseException]:
        commits = GroupCommit(store.commit, "test")
        first = asyncio.create_task(commits.submit(0))
        await asyncio.sleep(0.001)  # its commit is under way when the others come
        rest = await asyncio.gather(
            *(commits.submit(item) for item in range(2, 40, 2)),
            commits.submit(7),
            return_exceptions=True,
        )
        return [await first, *rest]

    outcomes = asyncio.run(go())
    assert outcomes[:20] == [item * 10 for item in range(0, 40, 2)]
    assert isinstance(outcomes[20], ValueError)
    assert str(outcomes[20]) == "odd 7"
    assert store.batches == [[0], [*range(2, 40, 2), 7]]


def test_a_failed_commit_fails_its_batch_only() -> None:
    store = Store(fail_batch=1)

    async def go() -> tuple[list[int | BaseException], int]:
        commits = GroupCommit(store.commit, "test")
        first = await asyncio.gather(commits.submit(2), commits.submit(4), return_exceptions=True)
        return first, await commits.submit(6)

    first, later = asyncio.run(go())
    assert [type(outcome) for outcome in first] == [OSError, OSError]
    assert later == 60
    assert store.batches == [[2, 4], [6]]


def test_drain_waits_for_everything_submitted_even_by_a_cancelled_caller() -> None:
    store = Store()

    async def go() -> None:
        commits = GroupCommit(store.commit, "test")
        waiting = [asyncio.create_task(commits.submit(item)) for item in (2, 4, 6)]
        await asyncio.sleep(0)
        waiting[1].cancel()
        await commits.drain()
        assert [task.result() for task in (waiting[0], waiting[2])] == [20, 60]
        assert waiting[1].cancelled()

    asyncio.run(go())
    assert sorted(item for batch in store.batches for item in batch) == [2, 4, 6]


def test_drain_without_submissions_returns() -> None:
    async def go() -> None:
        await GroupCommit(Store().commit, "test").drain()

    asyncio.run(go())


@pytest.mark.parametrize("steps_before_cancel", [1, 3])
def test_cancelling_the_writer_cancels_the_waiting_callers(steps_before_cancel: int) -> None:
    """Before the writer started and while it commits; then a new submission starts anew."""
    store = Store()

    async def go() -> int:
        commits = GroupCommit(store.commit, "test")
        waiting = [asyncio.create_task(commits.submit(item)) for item in (2, 4)]
        for _ in range(steps_before_cancel):
            await asyncio.sleep(0)
        writer = commits._writer
        assert writer is not None
        writer.cancel()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results)
        return await commits.submit(8)

    assert asyncio.run(go()) == 80
