"""Moving-window rate budgets of destinations and senders: "at most N messages in any P
seconds", for every (N, P) of a key at once.

    LocalBudget   kept in this process (one node)
    RedisBudget   shared by every node through Redis: "gmail: 1200/1m" holds for the fleet

`acquire(claims, cost, now)` is the one operation that spends: it takes `cost` messages from
every claimed key's windows when all of them have room, atomically (a Lua script on Redis, so two
nodes never both take the last slot), and otherwise takes nothing and says when they will have
room. `available_at` only looks.

Why not the `limits` library: its in-memory store inserts each send at the front of a list (cost
grows with the window: 40,000 an hour at a big provider) and sweeps every key through a thread
after each send, and its strategies test and hit one key at a time, where a message must fit the
destination's and its sender's windows together.
"""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from relay.errors import StoreUnavailable

__all__ = ["Claim", "LocalBudget", "RateBudget", "RedisBudget"]

Claim = tuple[str, list[tuple[int, int]]]  # a key and its (amount, period seconds) rates


class RateBudget(Protocol):
    async def available_at(
        self, key: str, rates: list[tuple[int, int]], cost: int, now: float
    ) -> float:
        """When `cost` more messages fit every rate of `key`; 0.0: now."""
        ...

    async def acquire(self, claims: Sequence[Claim], cost: int, now: float) -> float:
        """Take `cost` from every claim and return 0.0, or take nothing and return when all
        of them will have room."""
        ...

    def forget_idle(self, now: float) -> None:
        """Drop what this process keeps of windows whose sends have all aged out."""
        ...


class LocalBudget:
    """Per key and period, the send times within the last period, oldest first. A limit is
    checked against every message sent in its window, so a cut takes effect at once; the time a
    message fits again is exact (when enough sends have aged out). Amortised O(1) per send."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, int], deque[float]] = {}

    def _window(self, key: str, period: int, now: float) -> deque[float]:
        sent = self._sent.get((key, period))
        if sent is None:
            sent = self._sent[key, period] = deque()
        while sent and sent[0] <= now - period:
            sent.popleft()
        return sent

    def _fits_at(self, key: str, rates: list[tuple[int, int]], cost: int, now: float) -> float:
        at = 0.0
        for amount, period in rates:
            sent = self._window(key, period, now)
            excess = len(sent) + min(cost, amount) - amount
            if excess > 0:
                at = max(at, sent[excess - 1] + period)
        return at

    async def available_at(
        self, key: str, rates: list[tuple[int, int]], cost: int, now: float
    ) -> float:
        return self._fits_at(key, rates, cost, now)

    async def acquire(self, claims: Sequence[Claim], cost: int, now: float) -> float:
        at = max((self._fits_at(key, rates, cost, now) for key, rates in claims), default=0.0)
        if at > now:
            return at
        for key, rates in claims:
            for amount, period in rates:
                self._window(key, period, now).extend([now] * min(cost, amount))
        return 0.0

    def forget_idle(self, now: float) -> None:
        for (key, period), sent in list(self._sent.items()):
            if not sent or sent[-1] <= now - period:
                del self._sent[key, period]


# KEYS: one sorted set per (key, period), members send ids scored by send time. ARGV: now,
# cost, a unique send id, 1 to take (0 to look only), then amount and period per KEY
# (ARGV[3 + 2i], ARGV[4 + 2i] for KEYS[i]). Returns "0" when taken, else the time everything
# fits, as text (a Lua number would come back truncated to an integer).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local take = ARGV[4] == '1'
local at = 0
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[3 + i * 2])
  local period = tonumber(ARGV[4 + i * 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local excess = redis.call('ZCARD', key) + math.min(cost, amount) - amount
  if excess > 0 then
    local oldest = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
    local fits = tonumber(oldest[2]) + period
    if fits > at then at = fits end
  end
end
if at > now or not take then return tostring(at) end
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[3 + i * 2])
  local period = tonumber(ARGV[4 + i * 2])
  for j = 1, math.min(cost, amount) do
    redis.call('ZADD', key, now, ARGV[3] .. ':' .. j)
  end
  redis.call('PEXPIRE', key, math.ceil(period * 1000))
end
return '0'
"""


class RedisBudget:
    """The same windows as LocalBudget in Redis sorted sets under `prefix`, shared by every node
    using that prefix. A Redis error is StoreUnavailable: the caller falls back to conservative
    local limits rather than sending unmetered."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}budget:"
        self._script = redis.register_script(_ACQUIRE)
        self._node = secrets.token_hex(4)
        self._sends = itertools.count()

    async def _run(self, claims: Sequence[Claim], cost: int, now: float, take: bool) -> float:
        keys: list[str] = []
        args: list[str | int | float] = [now, cost, f"{self._node}:{next(self._sends)}"]
        args.append(1 if take else 0)
        for key, rates in claims:
            for amount, period in rates:
                keys.append(f"{self._prefix}{key}:{period}")
                args.extend((amount, period))
        if not keys:
            return 0.0
        try:
            reply = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis: cannot check the rate budget: {exc}") from exc
        return float(reply)

    async def available_at(
        self, key: str, rates: list[tuple[int, int]], cost: int, now: float
    ) -> float:
        return await self._run([(key, rates)], cost, now, take=False)

    async def acquire(self, claims: Sequence[Claim], cost: int, now: float) -> float:
        return await self._run(claims, cost, now, take=True)

    def forget_idle(self, now: float) -> None:
        """Nothing to forget here: the windows expire in Redis."""
