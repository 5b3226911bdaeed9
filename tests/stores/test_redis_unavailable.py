"""The Redis backend fails closed and fast: a stopped, unreachable or silent Redis makes every
lookup raise StoreUnavailable within the command timeout (RCPT answers 451 4.3.0), the message
never shows the password, and the stores answer again once Redis is back."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from relay.errors import StoreUnavailable
from relay.stores.redis import RedisStores
from tests.stores.helpers import HASHER, suppression
from tests.support.network import free_port
from tests.support.redis_server import RedisServer


def stores_at(url: str, tmp_path, timeout: float = 0.3) -> RedisStores:
    return RedisStores(
        url, HASHER, True, tmp_path / "stores.sqlite", key_prefix="t:", timeout=timeout,
        connect_timeout=timeout,
    )  # fmt: skip


async def timed_lookup(stores: RedisStores) -> float:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        await stores.suppression_for("ann@example.org", "acme", None)
    assert "hunter2" not in str(raised.value)
    return time.monotonic() - started


def test_a_stopped_redis_is_unavailable_at_once_and_recovers(tmp_path):
    port = free_port()
    server = RedisServer(tmp_path / "redis", port).start()
    entry = suppression("ann@example.org")

    async def scenario():
        async with stores_at(f"redis://:hunter2@127.0.0.1:{port}/0", tmp_path) as stores:
            await stores.add_suppressions([entry])
            server.stop()
            waited = await timed_lookup(stores)
            server.start()
            return waited, await stores.add_suppressions([entry])

    try:
        waited, added = asyncio.run(scenario())
    finally:
        server.stop()
    assert waited < 1.0
    assert added == 1  # a fresh server without persistence: stored anew


def test_nothing_listening_is_unavailable_and_open_still_succeeds(tmp_path):
    async def scenario():
        async with stores_at(f"redis://127.0.0.1:{free_port()}/0", tmp_path) as stores:
            return await timed_lookup(stores)

    assert asyncio.run(scenario()) < 1.0


def test_a_silent_redis_is_unavailable_after_the_command_timeout(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]

        async def scenario():
            async with stores_at(f"redis://127.0.0.1:{port}/0", tmp_path, timeout=0.2) as stores:
                return await timed_lookup(stores)

        waited = asyncio.run(scenario())
    assert 0.15 < waited < 1.0
