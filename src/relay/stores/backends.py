"""One place that makes the stores of a node from its settings: `[stores] backend` chooses
SQLite (one file, this node only) or Redis (shared by every node, `[redis]`), and with them the
delivery rate budget (this node's, or the fleet's in the same Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from relay.config.model import Settings
from relay.delivery.budget import LocalBudget, RateBudget, RedisBudget
from relay.errors import ConfigError
from relay.stores.base import Stores
from relay.stores.hashing import AddressHasher, load_or_create_key
from relay.stores.redis import RedisStores
from relay.stores.sqlite import SqliteStores

__all__ = ["make_budget", "make_stores", "open_stores", "redis_password"]


def make_stores(settings: Settings, hasher: AddressHasher | None = None) -> Stores:
    """The stores `settings` name, not opened yet; keyed by `hasher` or by the key at
    settings.hmac_key_path (created on first use). Raises ConfigError when a key or password
    file is unusable."""
    if hasher is None:
        hasher = AddressHasher(load_or_create_key(settings.hmac_key_path))
    keep_addresses = settings.audit.keep_addresses
    if settings.stores.backend == "redis":
        redis = settings.redis
        return RedisStores(
            redis.url,
            hasher,
            keep_addresses,
            settings.stores_path,
            key_prefix=redis.key_prefix,
            password=redis_password(settings),
            timeout=redis.timeout,
            connect_timeout=redis.connect_timeout,
        )
    return SqliteStores(settings.stores_path, hasher, keep_addresses)


def make_budget(stores: Stores) -> RateBudget:
    """The rate budget and connection slots of delivery: shared by the fleet when the (opened)
    stores are on Redis, else this node's."""
    if isinstance(stores, RedisStores):
        return RedisBudget(stores.client, stores.prefix)
    return LocalBudget()


@asynccontextmanager
async def open_stores(
    settings: Settings, hasher: AddressHasher | None = None
) -> AsyncIterator[Stores]:
    """make_stores, opened for the block and closed after it."""
    stores = make_stores(settings, hasher)
    await stores.open()
    try:
        yield stores
    finally:
        await stores.close()


def redis_password(settings: Settings) -> str | None:
    """The first line of [redis] password_file, if one is set."""
    path = settings.redis.password_file
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError([f"{path}: cannot read the Redis password: {problem}"]) from None
    password = text.splitlines()[0].strip() if text.strip() else ""
    if not password:
        raise ConfigError([f"{path}: the Redis password file is empty"])
    return password
