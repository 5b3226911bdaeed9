"""Rate budgets: the in-process one and the one several nodes share through a real redis-server
behave alike, take a destination's and its sender's windows together or not at all, and two
"nodes" spending concurrently never exceed a limit."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from relay.delivery.budget import LocalBudget, RateBudget, RedisBudget
from relay.errors import StoreUnavailable

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


def test_an_unreachable_redis_is_store_unavailable(redis_server):
    async def scenario() -> None:
        client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        try:
            await RedisBudget(client, "x:").acquire([("gmail", [(1, 60)])], 1, NOW)
        finally:
            await client.aclose()

    with pytest.raises(StoreUnavailable, match="rate budget"):
        asyncio.run(scenario())
