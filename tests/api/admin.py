"""A running relay with admin API tokens for every role, and httpx clients that use them.

Two sender profiles are stored (`shop`, the mailer token's sender, and `other`); the tokens are
made as `relay tokens create` makes them and written to the relay's own stores file while it
runs (`tests/api/test_tokens.py` runs the command itself)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from relay.api.auth import new_token
from relay.stores.hashing import AddressHasher
from relay.stores.models import ApiRole, SenderProfile
from relay.stores.sqlite import SqliteStores
from tests.support.relay_process import RelayProcess

SENDER_ID = "shop"
OTHER_SENDER_ID = "other"
SENDERS = (
    SenderProfile(
        sender_id=SENDER_ID,
        legal_name="Shop Ltd",
        postal_address="1 Main St, Springfield",
        contact="privacy@shop.example",
        verified_domains=("shop.example",),
        default_jurisdiction="US",
        users=("shop",),
    ),
    SenderProfile(
        sender_id=OTHER_SENDER_ID,
        legal_name="Other GmbH",
        postal_address="Hauptstr. 1, Berlin",
        contact="datenschutz@other.example",
        verified_domains=("other.example",),
        default_jurisdiction="EU",
    ),
)
ROLES = ("operator", "compliance", "mailer")


@dataclass
class AdminApi:
    relay: RelayProcess
    hasher: AddressHasher
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token

    @property
    def url(self) -> str:
        return self.relay.http_url

    @property
    def stores_path(self) -> Path:
        return self.relay.directory / "var" / "stores.sqlite"

    def client(self, role: str | None = "operator", token: str | None = None) -> httpx.Client:
        """A client sending the token of `role` (None: no token), or `token` itself."""
        secret = token if token is not None else self.tokens.get(role or "")
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    @contextmanager
    def as_role(self, role: str | None = "operator") -> Iterator[httpx.Client]:
        with self.client(role) as client:
            yield client

    def add_token(self, role: str, name: str, sender_id: str | None = None) -> str:
        token, stored = new_token(name, ApiRole(role), sender_id, datetime.now(UTC))

        async def add() -> None:
            async with SqliteStores(self.stores_path, self.hasher, True) as stores:
                await stores.add_api_token(stored)

        asyncio.run(add())
        return token

    def audit(self, stage: str = "admin") -> list[dict[str, object]]:
        """The audit records of `stage`, in log order."""
        records: list[dict[str, object]] = []
        for path in sorted((self.relay.directory / "var" / "audit").glob("audit-*.jsonl")):
            records.extend(json.loads(line) for line in path.read_text().splitlines())
        return [record for record in records if record["stage"] == stage]


def start_admin_api(relay: RelayProcess) -> AdminApi:
    hasher = AddressHasher((relay.directory / "var" / "keys" / "address-hmac.key").read_bytes())
    api = AdminApi(relay, hasher)

    async def add_senders() -> None:
        async with SqliteStores(api.stores_path, hasher, True) as stores:
            await stores.put_senders(SENDERS)

    asyncio.run(add_senders())
    for role in ROLES:
        sender = SENDER_ID if role == "mailer" else None
        api.tokens[role] = api.add_token(role, f"test-{role}", sender)
    return api
