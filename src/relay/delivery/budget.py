"""Moving-window rate budgets of destinations and senders ("at most N messages in any P seconds",
for every (N, P) of a key at once) and the connection slots of the attempts running under them.

    LocalBudget   kept in this process (one node); its attempts are counted by the scheduler
    RedisBudget   shared by every node through Redis: "gmail: 1200/1m" and "gmail: at most 20
                  connections" hold for the fleet

`acquire(claims, cost, now, slots, lease)` is the one operation that spends: it takes `cost`
messages from every claimed key's windows and one of every slot when all of them have room,
atomically (a Lua script on Redis, so two nodes never both take the last one), and otherwise
takes nothing and says when to ask again. `release(lease)` gives the slots back when the attempt
ends; `available_at` only looks; `tend` is the upkeep of every few seconds.

Why not the `limits` library: its in-memory store inserts each send at the front of a list (cost
grows with the window: 40,000 an hour at a big provider) and sweeps every key through a thread
after each send, and its strategies test and hit one key at a time, where a message must fit the
destination's and its sender's windows together; it has no counts of things in progress.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from relay.errors import StoreUnavailable
from relay.outage import Outage

__all__ = [
    "FLEET_UNKNOWN",
    "LEASE_TTL",
    "SLOT_RECHECK",
    "Claim",
    "LocalBudget",
    "RateBudget",
    "RedisBudget",
    "Slot",
]

log = logging.getLogger("relay.delivery")

Rates = list[tuple[int, int]]  # (amount, period seconds)
Claim = tuple[str, Rates]  # a key and its rates
Slot = tuple[str, int]  # a key and how many attempts may run under it at once

SLOT_RECHECK = 0.25  # seconds until a destination whose slots are all taken is asked again
LEASE_TTL = 30.0  # seconds a slot outlives its node's last renewal (a node that died)
NODE_TTL = 15.0  # seconds a node counts as one of the fleet after its last renewal
RETRY_AFTER = 2.0  # seconds between tries of an unreachable Redis
FLEET_UNKNOWN = 2  # nodes assumed to share each limit when Redis never answered


class RateBudget(Protocol):
    async def available_at(self, key: str, rates: Rates, cost: int, now: float) -> float:
        """When `cost` more messages fit every rate of `key`; 0.0: now."""
        ...

    async def acquire(
        self,
        claims: Sequence[Claim],
        cost: int,
        now: float,
        slots: Sequence[Slot] = (),
        lease: int = 0,
    ) -> float:
        """Take `cost` from every claim and one of every slot, held under `lease` until
        release(lease), and return 0.0; or take nothing and return when to ask again."""
        ...

    async def release(self, lease: int) -> None:
        """The attempt holding `lease` ended: its slots are free again. Never raises."""
        ...

    async def tend(self, now: float) -> None:
        """Upkeep, every few seconds: forget idle windows, keep held slots alive."""
        ...


class LocalBudget:
    """Per key and period, the send times within the last period, oldest first. A limit is
    checked against every message sent in its window, so a cut takes effect at once; the time a
    message fits again is exact (when enough sends have aged out). Amortised O(1) per send.

    Slots are the scheduler's business on one node (it counts the attempts running at each
    destination and sender), so this budget takes none."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, int], deque[float]] = {}

    def _window(self, key: str, period: int, now: float) -> deque[float]:
        sent = self._sent.get((key, period))
        if sent is None:
            sent = self._sent[key, period] = deque()
        while sent and sent[0] <= now - period:
            sent.popleft()
        return sent

    def _fits_at(self, key: str, rates: Rates, cost: int, now: float) -> float:
        at = 0.0
        for amount, period in rates:
            sent = self._window(key, period, now)
            excess = len(sent) + min(cost, amount) - amount
            if excess > 0:
                at = max(at, sent[excess - 1] + period)
        return at

    def spend(self, claims: Sequence[Claim], cost: int, now: float) -> None:
        """Count `cost` sends in every claimed window, whether or not they fit."""
        for key, rates in claims:
            for amount, period in rates:
                self._window(key, period, now).extend([now] * min(cost, amount))

    async def available_at(self, key: str, rates: Rates, cost: int, now: float) -> float:
        return self._fits_at(key, rates, cost, now)

    async def acquire(
        self,
        claims: Sequence[Claim],
        cost: int,
        now: float,
        slots: Sequence[Slot] = (),
        lease: int = 0,
    ) -> float:
        at = max((self._fits_at(key, rates, cost, now) for key, rates in claims), default=0.0)
        if at > now:
            return at
        self.spend(claims, cost, now)
        return 0.0

    async def release(self, lease: int) -> None:
        """Nothing to give back: the scheduler counts the attempts."""

    async def tend(self, now: float) -> None:
        self.forget_idle(now)

    def forget_idle(self, now: float) -> None:
        for (key, period), sent in list(self._sent.items()):
            if not sent or sent[-1] <= now - period:
                del self._sent[key, period]


# KEYS: the rate windows (one sorted set per key and period, members send ids scored by send
# time), then the slots (one sorted set per key, members leases scored by expiry). ARGV: now,
# cost, a unique send id, 1 to take (0 to look only), the number of rate windows, the lease,
# its expiry; then amount and period per window (ARGV[6 + 2i], ARGV[7 + 2i] for KEYS[i]);
# then the cap per slot (ARGV[7 + r + j] for KEYS[j], r windows). Returns "0" when taken,
# "-1" when a slot is full, else the time every window has room, as text (a Lua number would
# come back truncated to an integer).
_ACQUIRE = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local take = ARGV[4] == '1'
local windows = tonumber(ARGV[5])
for j = windows + 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[j], '-inf', now)
  if redis.call('ZCARD', KEYS[j]) >= tonumber(ARGV[7 + windows + j]) then return '-1' end
end
local at = 0
for i = 1, windows do
  local amount = tonumber(ARGV[6 + i * 2])
  local period = tonumber(ARGV[7 + i * 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
  local excess = redis.call('ZCARD', KEYS[i]) + math.min(cost, amount) - amount
  if excess > 0 then
    local oldest = redis.call('ZRANGE', KEYS[i], excess - 1, excess - 1, 'WITHSCORES')
    local fits = tonumber(oldest[2]) + period
    if fits > at then at = fits end
  end
end
if at > now or not take then return tostring(at) end
for i = 1, windows do
  local amount = tonumber(ARGV[6 + i * 2])
  local period = tonumber(ARGV[7 + i * 2])
  for n = 1, math.min(cost, amount) do
    redis.call('ZADD', KEYS[i], now, ARGV[3] .. ':' .. n)
  end
  redis.call('PEXPIRE', KEYS[i], math.ceil(period * 1000))
end
local expiry = tonumber(ARGV[7])
for j = windows + 1, #KEYS do
  redis.call('ZADD', KEYS[j], expiry, ARGV[6])
  redis.call('PEXPIRE', KEYS[j], math.ceil((expiry - now) * 2000))
end
return '0'
"""


def _share(amount: int, fleet: int) -> int:
    return max(1, amount // fleet)


class RedisBudget:
    """The windows of LocalBudget and the slots in Redis sorted sets under `prefix`, shared by
    every node using that prefix. A slot is a lease that expires LEASE_TTL seconds after its
    node last renewed it (`tend`), so the slots of a node that died come free by themselves.

    While Redis cannot be asked, the node falls back to its share of every limit: each rate
    and cap divided by the number of nodes seen renewing in the fleet (FLEET_UNKNOWN before
    Redis first answered), at least 1, counting its own sends of the window, those it made
    through Redis included; Redis is tried again every `retry_after` seconds, and the outage is
    logged once."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        outage: Outage | None = None,
        retry_after: float = RETRY_AFTER,
    ) -> None:
        self._redis = redis
        self._retry_after = retry_after
        self._prefix = f"{prefix}budget:"
        self._nodes_key = f"{prefix}budget-nodes"
        self._script = redis.register_script(_ACQUIRE)
        self._node = secrets.token_hex(4)
        self._sends = itertools.count()
        self._outage = outage or Outage(
            log,
            "shared rate budget lookups (Redis)",
            "each node keeps to its share of every limit",
        )
        self._retry_at = 0.0  # time.monotonic() of the next try while Redis is down
        self.fleet = FLEET_UNKNOWN  # nodes seen renewing at the last upkeep
        self._own = LocalBudget()  # this node's sends: the fallback's windows
        self._held: dict[int, tuple[tuple[str, ...], bool]] = {}  # lease -> slot keys, shared
        self._running: Counter[str] = Counter()  # slot key -> this node's leases

    def _member(self, lease: int) -> str:
        return f"{self._node}:{lease}"

    def _reachable(self) -> bool:
        return time.monotonic() >= self._retry_at

    def _failed(self, exc: Exception) -> None:
        self._retry_at = time.monotonic() + self._retry_after
        self._outage.failed(exc)

    async def _run(
        self,
        claims: Sequence[Claim],
        cost: int,
        now: float,
        take: bool,
        slots: Sequence[Slot] = (),
        lease: int = 0,
    ) -> float:
        window_keys: list[str] = []
        window_args: list[int] = []
        for key, rates in claims:
            for amount, period in rates:
                window_keys.append(f"{self._prefix}{key}:{period}")
                window_args.extend((amount, period))
        keys = window_keys + [f"{self._prefix}{key}:slots" for key, _ in slots]
        args = [
            now,
            cost,
            f"{self._node}:{next(self._sends)}",
            1 if take else 0,
            len(window_keys),
            self._member(lease),
            now + LEASE_TTL,
            *window_args,
            *(cap for _, cap in slots),
        ]
        if not keys:
            return 0.0
        try:
            reply = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"Redis: cannot check the rate budget: {exc}") from exc
        self._outage.answered()
        return float(reply)

    def _fallback_claims(self, claims: Sequence[Claim]) -> list[Claim]:
        return [
            (key, [(_share(amount, self.fleet), period) for amount, period in rates])
            for key, rates in claims
        ]

    async def available_at(self, key: str, rates: Rates, cost: int, now: float) -> float:
        if self._reachable():
            try:
                return await self._run([(key, rates)], cost, now, take=False)
            except StoreUnavailable as exc:
                self._failed(exc)
        ((key, shared_rates),) = self._fallback_claims([(key, rates)])
        return await self._own.available_at(key, shared_rates, cost, now)

    async def acquire(
        self,
        claims: Sequence[Claim],
        cost: int,
        now: float,
        slots: Sequence[Slot] = (),
        lease: int = 0,
    ) -> float:
        if self._reachable():
            try:
                at = await self._run(claims, cost, now, True, slots, lease)
            except StoreUnavailable as exc:
                self._failed(exc)
            else:
                if at < 0:
                    return now + SLOT_RECHECK
                if at == 0.0:
                    self._own.spend(claims, cost, now)
                    self._hold(lease, slots, shared=True)
                return at
        if any(self._running[key] >= _share(cap, self.fleet) for key, cap in slots):
            return now + SLOT_RECHECK
        at = await self._own.acquire(self._fallback_claims(claims), cost, now)
        if at == 0.0:
            self._hold(lease, slots, shared=False)
        return at

    def _hold(self, lease: int, slots: Sequence[Slot], shared: bool) -> None:
        if slots:
            keys = tuple(key for key, _ in slots)
            self._held[lease] = (keys, shared)
            self._running.update(keys)

    async def release(self, lease: int) -> None:
        held = self._held.pop(lease, None)
        if held is None:
            return
        keys, shared = held
        for key in keys:
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
        if not shared or not self._reachable():
            return  # the lease expires in Redis by itself
        try:
            pipe: Any = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.zrem(f"{self._prefix}{key}:slots", self._member(lease))
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)

    async def tend(self, now: float) -> None:
        """Renew this node's place in the fleet and its slots, and learn the fleet's size."""
        self._own.forget_idle(now)
        if not self._reachable():
            return
        try:
            pipe: Any = self._redis.pipeline(transaction=False)
            pipe.zadd(self._nodes_key, {self._node: now})
            pipe.zremrangebyscore(self._nodes_key, "-inf", now - NODE_TTL)
            pipe.zcard(self._nodes_key)
            pipe.expire(self._nodes_key, int(NODE_TTL * 4))
            for lease, (keys, shared) in self._held.items():
                if shared:
                    for key in keys:
                        slot_key = f"{self._prefix}{key}:slots"
                        pipe.zadd(slot_key, {self._member(lease): now + LEASE_TTL}, xx=True)
                        pipe.pexpire(slot_key, int(LEASE_TTL * 2000))
            replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc)
            return
        self._outage.answered()
        self.fleet = max(1, int(replies[2]))
