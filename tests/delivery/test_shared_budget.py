"""Rate budgets: the in-process one and the one several nodes share through a real redis-server
behave alike, take a destination's and its sender's windows together or not at all, and two
"nodes" spending concurrently never exceed a limit. The shared one also counts the connection
slots of the fleet (freed on release, or when a node stops renewing them), and without Redis a
node keeps to its share of each limit."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from relay.delivery.budget import (
    FLEET_UNKNOWN,
    LEASE_TTL,
    SLOT_RECHECK,
    LocalBudget,
    RateBudget,
    RedisBudget,
)
from tests.support.network import free_port
from tests.support.redis_server import RedisServer

NOW = 1_800_000_000.0


async def redis_budgets(url: str, nodes: int) -> tuple[list[RedisBudget], list[Redis]]:
    prefix = f"test-{secrets.token_hex(4)}:"
    clients = [Redis.from_url(url) for _ in range(nodes)]
    return [RedisBudget(client, prefix) for client in clients], clients


def run_with_budgets(kind: str, url: str, scenario, nodes: int = 1):
    async def main():
        if kind == "local":
            local = LocalBudget()
            return await scenario([local] * nodes)
        budgets, clients = await redis_budgets(url, nodes)
        try:
            return await scenario(budgets)
        finally:
            for client in clients:
                await client.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_window_fills_and_says_when_it_has_room_again(kind, redis_server):
    async def scenario(budgets: list[RateBudget]) -> list[float]:
        (budget,) = budgets
        rates = [(3, 60)]
        answers = [await budget.acquire([("gmail", rates)], 1, NOW + n) for n in range(4)]
        answers.append(await budget.available_at("gmail", rates, 1, NOW + 10))
        answers.append(await budget.acquire([("gmail", rates)], 1, NOW + 60))
        return answers

    assert run_with_budgets(kind, redis_server.url, scenario) == [
        0.0,
        0.0,
        0.0,
        NOW + 60,  # the first send ages out then
        NOW + 60,
        0.0,
    ]


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_destination_and_sender_windows_are_taken_together_or_not_at_all(kind, redis_server):
    async def scenario(budgets: list[RateBudget]) -> tuple[float, float, float]:
        (budget,) = budgets
        destination, sender = ("yahoo", [(10, 60)]), ("yahoo/shop", [(1, 60)])
        first = await budget.acquire([destination, sender], 1, NOW)
        refused = await budget.acquire([destination, sender], 1, NOW + 1)
        # The refused attempt took nothing from the destination: 9 more fit there.
        room = await budget.available_at("yahoo", [(10, 60)], 9, NOW + 1)
        return first, refused, room

    assert run_with_budgets(kind, redis_server.url, scenario) == (0.0, NOW + 60, 0.0)


def test_two_nodes_spending_at_once_never_exceed_the_limit(redis_server):
    async def scenario(budgets: list[RateBudget]) -> int:
        async def spend(budget: RateBudget) -> int:
            taken = 0
            for n in range(50):
                if await budget.acquire([("outlook", [(30, 60)])], 1, NOW + n / 100) == 0.0:
                    taken += 1
            return taken

        return sum(await asyncio.gather(*(spend(budget) for budget in budgets)))

    assert run_with_budgets("redis", redis_server.url, scenario, nodes=2) == 30


def test_connection_slots_are_shared_and_come_free_on_release(redis_server):
    slot = [("gmail", 2)]

    async def scenario(budgets: list[RateBudget]) -> list[float]:
        node_a, node_b = budgets
        answers = [
            await node_a.acquire([], 1, NOW, slot, lease=1),
            await node_a.acquire([], 1, NOW, slot, lease=2),
            await node_b.acquire([], 1, NOW, slot, lease=1),  # both of the fleet's are taken
        ]
        await node_a.release(1)
        answers.append(await node_b.acquire([], 1, NOW, slot, lease=1))
        return answers

    answers = run_with_budgets("redis", redis_server.url, scenario, nodes=2)
    assert answers == [0.0, 0.0, NOW + SLOT_RECHECK, 0.0]


def test_a_slot_of_a_node_that_stopped_renewing_expires(redis_server):
    slot = [("yahoo", 1)]

    async def scenario(budgets: list[RateBudget]) -> list[float]:
        node_a, node_b = budgets
        taken = await node_a.acquire([], 1, NOW, slot, lease=7)
        await node_a.tend(NOW + 10)  # renewed: held until NOW + 10 + LEASE_TTL
        held = await node_b.acquire([], 1, NOW + LEASE_TTL + 1, slot, lease=1)
        # node A died: no renewal after NOW + 10.
        freed = await node_b.acquire([], 1, NOW + 10 + LEASE_TTL + 1, slot, lease=1)
        return [taken, held, freed]

    answers = run_with_budgets("redis", redis_server.url, scenario, nodes=2)
    assert answers == [0.0, NOW + LEASE_TTL + 1 + SLOT_RECHECK, 0.0]


def test_without_redis_each_node_keeps_to_its_share_and_logs_the_outage_once(tmp_path, caplog):
    server = RedisServer(tmp_path / "redis", free_port()).start()
    rates = [("hotmail", [(10, 60)])]

    async def scenario() -> tuple[int, int, int, list[float]]:
        prefix = f"test-{secrets.token_hex(4)}:"
        clients = [Redis.from_url(server.url, socket_timeout=0.5) for _ in range(2)]
        # retry_after 0: every call tries Redis first, so the first one after the restart
        # finds it back.
        node_a, node_b = (RedisBudget(c, prefix, retry_after=0.0) for c in clients)
        try:
            for node in (node_a, node_b, node_a):
                await node.tend(NOW)
            fleet = node_a.fleet
            # Two sends through Redis, then Redis goes away for the rest of the window.
            through_redis = [await node_a.acquire(rates, 1, NOW + n) for n in range(2)]
            server.stop()
            alone = 0
            for n in range(10):
                if await node_a.acquire(rates, 1, NOW + 2 + n / 10) == 0.0:
                    alone += 1
            server.start()  # empty: the window restarts in Redis
            back = await node_a.acquire(rates, 1, NOW + 5)
            return fleet, alone, int(back), through_redis
        finally:
            for client in clients:
                await client.aclose()

    caplog.set_level("DEBUG", logger="relay.delivery")
    try:
        fleet, alone, back, through_redis = asyncio.run(scenario())
    finally:
        server.stop()
    assert fleet == 2
    assert through_redis == [0.0, 0.0]
    # Half of 10 per node while the fleet's count cannot be asked, its own 2 sends included.
    assert alone == 3
    assert back == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, warnings
    assert "shared rate budget lookups (Redis) failing" in warnings[0]
    assert "once per outage" in warnings[0]
    assert "shared rate budget lookups (Redis) succeed again" in warnings[1]


def test_before_redis_ever_answered_a_node_assumes_a_fleet_of_two():
    async def scenario() -> tuple[int, list[float]]:
        client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        budget = RedisBudget(client, "x:")
        try:
            answers = [await budget.acquire([("gmail", [(4, 60)])], 1, NOW) for _ in range(3)]
            return budget.fleet, answers
        finally:
            await client.aclose()

    fleet, answers = asyncio.run(scenario())
    assert fleet == FLEET_UNKNOWN == 2
    assert answers == [0.0, 0.0, NOW + 60]
