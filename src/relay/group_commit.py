"""Group commit: what concurrent callers write goes to storage together. While one batch is
being committed, later submissions wait and form the next batch, so fifty transactions in flight
cost a few commits (an fsync, a database transaction, a hop to the writer thread) instead of
fifty. Each caller still returns only when its own item is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    """Commits submitted items in batches with `commit`, one batch at a time. `commit` gets a
    batch and returns one outcome per item: its result, or an exception that fails that item
    alone; an exception it raises fails the whole batch. Use from one event loop."""

    def __init__(
        self, commit: Callable[[list[T]], Awaitable[list[R | Exception]]], name: str
    ) -> None:
        self._commit = commit
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._batch: list[tuple[T, asyncio.Future[R]]] = []  # being committed
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """`item`'s outcome once the batch holding it is committed. A caller cancelled while
        waiting does not withdraw its item: it may be committed all the same."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write(), name=self._name)
            self._writer.add_done_callback(self._stopped)
        return await done

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (or has failed)."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _write(self) -> None:
        while self._pending:
            self._batch, self._pending = self._pending, []
            try:
                outcomes = await self._commit([item for item, _ in self._batch])
            except Exception as exc:
                outcomes = [exc] * len(self._batch)
            for (_, done), outcome in zip(self._batch, outcomes, strict=True):
                if done.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, Exception):
                    done.set_exception(outcome)
                else:
                    done.set_result(outcome)
            self._batch = []
        self._writer = None  # at once: a submission from now on starts the next writer

    def _stopped(self, writer: asyncio.Task[None]) -> None:
        """The writer was cancelled (the loop is shutting down): so are its callers."""
        if self._writer is not writer:
            return
        self._writer = None
        for _, done in self._batch + self._pending:
            done.cancel()
        self._batch, self._pending = [], []
