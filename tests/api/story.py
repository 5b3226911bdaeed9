"""The story the audit, stats and report tests read, told once per test by the `mailed`
fixture (tests/api/conftest.py): the shop sends its campaign to ann (the destination refuses her
for good), bob, carl and dan (deferred for now); bob unsubscribes with the one-click POST; the
shop's next mailing to ann and bob is refused at RCPT."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from tests.api.admin import AdminApi, start_admin_api
from tests.policy.builders import message
from tests.scenarios.compliance import (
    ShopDomain,
    add_shop_sender,
    audit_records,
    policy_config,
    submit,
)
from tests.scenarios.test_feedback_becomes_suppression import keys
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess, merge
from tests.support.sink import Sink

ANN, BOB, CARL, DAN = (f"{name}@example.us" for name in ("ann", "bob", "carl", "dan"))
CAMPAIGN = "spring-sale"
QUEUED = re.compile(r"Queued as ([0-9A-F]+)")


@dataclass
class Mailed:
    """The story's relay, its admin API, and what the story produced."""

    api: AdminApi
    queue_id: str
    message_id: str

    @property
    def relay(self) -> RelayProcess:
        return self.api.relay

    def records(self) -> list[dict[str, Any]]:
        return audit_records(self.relay)

    def refusing_rule(self, address: str) -> str:
        """The rule whose reply refused `address` (at the second mailing)."""
        hashed = self.api.hasher.hash(address)
        (rule,) = [
            record["rule_id"]
            for record in self.records()
            if record["recipient_hash"] == hashed
            and record["stage"] == "rcpt"
            and record["reply"] is not None
        ]
        return str(rule)


def unsubscribe(relay: RelayProcess, address: str, list_id: str | None = None) -> None:
    tokens, hasher = keys(relay)
    token = tokens.issue(
        sender_id="shop", list_id=list_id, address_hash=hasher.hash(address), issued=date.today()
    )
    answer = httpx.post(
        f"{relay.http_url}/u/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10
    )
    assert answer.status_code == 200, answer.text


def get(api: AdminApi, path: str, role: str = "compliance", **params: Any) -> Any:
    with api.as_role(role) as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def mail_the_story(make_relay: Callable[..., RelayProcess], shop: ShopDomain, sink: Sink) -> Mailed:
    """Run the story on a new relay (see the module docstring)."""
    config = merge(policy_config(sink, shop), {"delivery": {"retry_schedule": ["1h"]}})
    api = start_admin_api(make_relay(config))
    add_shop_sender(api.relay)
    sink.rcpt_replies[ANN].append("550 5.1.1 <ann@example.us>: no such user")
    sink.rcpt_replies[DAN].append("450 4.2.0 <dan@example.us>: try again later")
    message_id = "<spring-1@shop.example>"
    content = message({"X-Relay-Campaign": CAMPAIGN, "Message-ID": message_id})
    replies, data = submit(api.relay, [ANN, BOB, CARL, DAN], content)
    assert all(code == 250 for code, _ in replies.values()), replies
    assert data is not None
    assert data[0] == 250, data
    queued = QUEUED.search(data[1])
    assert queued, data
    sink.wait_for(2)  # bob and carl
    ann = api.hasher.hash(ANN)
    suppressed = poll(
        lambda: (
            any(
                (r["stage"], r["action"], r["recipient_hash"]) == ("queue", "suppress", ann)
                for r in audit_records(api.relay)
            )
            or None
        ),
        timeout=20,
    )
    assert suppressed, api.relay.log
    api.relay.wait_for_log(f"to=<{DAN}> relay=")
    unsubscribe(api.relay, BOB)
    replies, data = submit(api.relay, [ANN, BOB], content)
    assert {address: code for address, (code, _) in replies.items()} == {ANN: 550, BOB: 550}
    return Mailed(api, queued.group(1), message_id)
