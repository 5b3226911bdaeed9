"""Shared pieces of the store tests: a hasher, sample records, and running the stores."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from relay.stores.hashing import AddressHasher
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)
from relay.stores.sqlite import SqliteStores

T = TypeVar("T")

KEY = bytes(range(32))
HASHER = AddressHasher(KEY)
WHEN = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def run_stores(
    path: Path,
    action: Callable[[SqliteStores], Awaitable[T]],
    keep_addresses: bool = True,
    hasher: AddressHasher = HASHER,
) -> T:
    """Open the stores at `path`, run `action` on them, close them."""

    async def run() -> T:
        async with SqliteStores(path, hasher, keep_addresses) as stores:
            return await action(stores)

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
