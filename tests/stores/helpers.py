"""Shared pieces of the store tests: a hasher, sample records, and running the stores."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from relay.stores.base import Stores
from relay.stores.hashing import AddressHasher
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)
from relay.stores.redis import RedisStores
from relay.stores.sqlite import SqliteStores

T = TypeVar("T")

KEY = bytes(range(32))
HASHER = AddressHasher(KEY)
WHEN = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@dataclass(frozen=True)
class RedisPlace:
    """Stores in a Redis under a key prefix of their own (the list-health figures beside, in
    a SQLite file at `stats_path`)."""

    url: str
    prefix: str
    stats_path: Path


def make_stores(
    place: Path | RedisPlace, keep_addresses: bool = True, hasher: AddressHasher = HASHER
) -> Stores:
    """SqliteStores at a path, RedisStores at a RedisPlace (not opened)."""
    if isinstance(place, RedisPlace):
        return RedisStores(
            place.url, hasher, keep_addresses, place.stats_path, key_prefix=place.prefix
        )
    return SqliteStores(place, hasher, keep_addresses)


def run_stores(
    path: Path | RedisPlace,
    action: Callable[[Any], Awaitable[T]],
    keep_addresses: bool = True,
    hasher: AddressHasher = HASHER,
) -> T:
    """Open the stores at `path` (a SQLite file or a RedisPlace), run `action` on them, close
    them."""

    async def run() -> T:
        stores = make_stores(path, keep_addresses, hasher)
        await stores.open()
        try:
            return await action(stores)
        finally:
            await stores.close()

    return asyncio.run(run())


def suppression(
    address: str,
    sender_id: str = "acme",
    scope: SuppressionScope = SuppressionScope.SENDER,
    list_id: str | None = None,
    reason: SuppressionReason = SuppressionReason.UNSUBSCRIBE_ONE_CLICK,
) -> SuppressionEntry:
    return SuppressionEntry(
        address_hash=HASHER.hash(address),
        sender_id=sender_id,
        scope=scope,
        reason=reason,
        source="one-click",
        received_at=WHEN,
        list_id=list_id,
        source_message_id="<m1@acme.example>",
        address=address,
    )


def consent(
    record_id: str,
    address: str,
    sender_id: str = "acme",
    obtained_at: datetime = WHEN,
    **changes: Any,
) -> ConsentRecord:
    record = ConsentRecord(
        record_id=record_id,
        address_hash=HASHER.hash(address),
        sender_id=sender_id,
        scope=("news", "offers"),
        basis=ConsentBasis.CONFIRMED_OPTIN,
        jurisdictions=frozenset({"EU", "CN"}),
        obtained_at=obtained_at,
        source="form:signup-v3 ip=192.0.2.7 ua=Mozilla/5.0",
        evidence_ref="doi-log/2024/03/01/0001",
        notice_version="privacy-2024-01",
        address=address,
    )
    return dataclasses.replace(record, **changes)
