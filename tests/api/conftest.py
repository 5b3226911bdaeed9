"""A running relay and what a test needs to make and check its unsubscribe tokens: the token
and address keys relay created under its state directory, and `relay suppressions check`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.stores.hashing import AddressHasher
from tests.api.admin import AdminApi, start_admin_api
from tests.api.story import Mailed, mail_the_story
from tests.scenarios.compliance import ShopDomain
from tests.support.relay_process import RelayProcess
from tests.support.sink import Sink

RECIPIENT = "ann@example.us"
SENDER_ID = "shop"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@dataclass
class Unsubscribing:
    """A relay with its keys, for issuing tokens as its rewrite stage does."""

    relay: RelayProcess
    tokens: UnsubscribeTokens
    hasher: AddressHasher

    def url(
        self,
        address: str = RECIPIENT,
        list_id: str | None = "weekly",
        issued: date | None = None,
    ) -> str:
        token = self.tokens.issue(
            sender_id=SENDER_ID,
            list_id=list_id,
            address_hash=self.hasher.hash(address),
            issued=issued or date.today(),
        )
        return f"{self.relay.http_url}/u/{token}"

    def suppression(
        self, address: str = RECIPIENT, list_id: str | None = "weekly"
    ) -> dict[str, Any] | None:
        """The entry `relay suppressions check` prints, None when it says "not suppressed"."""
        args = ["suppressions", "check", address, "--sender", SENDER_ID]
        if list_id is not None:
            args += ["--list", list_id]
        result = subprocess.run(
            [sys.executable, "-m", "relay", *args, "--config", str(self.relay.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout) if result.returncode == 0 else None

    def audit(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in sorted((self.relay.directory / "var" / "audit").glob("audit-*.jsonl")):
            records.extend(json.loads(line) for line in path.read_text().splitlines())
        return [record for record in records if record["stage"] == "unsubscribe"]


@pytest.fixture
def unsubscribing(make_relay: Callable[..., RelayProcess]) -> Unsubscribing:
    relay = make_relay()
    keys = relay.directory / "var" / "keys"
    return Unsubscribing(
        relay,
        UnsubscribeTokens((keys / "unsubscribe-token.key").read_bytes()),
        AddressHasher((keys / "address-hmac.key").read_bytes()),
    )


@pytest.fixture
def admin_api(make_relay: Callable[..., RelayProcess]) -> AdminApi:
    """A relay with sender profiles `shop` and `other` and a token for every role."""
    return start_admin_api(make_relay())


@pytest.fixture
def mailed(make_relay: Callable[..., RelayProcess], shop: ShopDomain, sink: Sink) -> Mailed:
    """The story of tests/api/story.py, told on a new relay."""
    return mail_the_story(make_relay, shop, sink)
