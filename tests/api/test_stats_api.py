"""`GET /api/v1/stats` of a running relay, over real HTTP: the figures of the story of
tests/api/test_audit_api.py (`mailed`), per sender and per destination, over a day and a week,
with the mailbox providers' thresholds."""

from __future__ import annotations

from typing import Any

import pytest

from relay.stores.stats import BOUNCE_WARN, COMPLAINT_PAUSE, COMPLAINT_WARN
from tests.api.story import ANN, BOB, get
from tests.support.polling import poll


@pytest.mark.parametrize(
    ("role", "status"), [("operator", 200), ("compliance", 200), ("mailer", 403), (None, 401)]
)
def test_readers_may_read_the_figures_and_nobody_else(admin_api, role, status):
    with admin_api.as_role(role) as client:
        response = client.get("/api/v1/stats", params={"sender_id": "shop"})
    assert response.status_code == status, response.text


def test_an_idle_sender_has_nothing_to_show(admin_api):
    report = get(admin_api, "/api/v1/stats", sender_id="other")
    assert report["thresholds"] == {
        "rule": "MBP-COMPLAINT-RATE",
        "complaint_warn": COMPLAINT_WARN,
        "complaint_pause": COMPLAINT_PAUSE,
        "bounce_warn": BOUNCE_WARN,
    }
    (other,) = report["senders"]
    assert other["sender_id"] == "other"
    assert other["destinations"] == []
    for window in ("1d", "7d"):
        figures = other["windows"][window]
        assert figures["accepted"] == figures["delivered"] == figures["refused"] == 0
        assert figures["complaint_rate"] is None
        assert figures["complaint_level"] is None


def test_figures_match_the_mail_sent(mailed):
    refused = {mailed.refusing_rule(ANN): 0, mailed.refusing_rule(BOB): 0}
    refused[mailed.refusing_rule(ANN)] += 1
    refused[mailed.refusing_rule(BOB)] += 1
    expected = {
        "accepted": 4,
        "refused": 2,  # ann and bob at the second mailing's RCPT
        "refusals": refused,
        "delivered": 2,  # bob and carl
        "deferred": 1,  # dan (450)
        "hard_bounces": 1,  # ann (550 5.1.1)
        "soft_bounces": 1,  # dan
        "complaints": 0,
        "unsubscribes": 1,  # bob
        "hard_bounce_rate": 1 / 4,
        "soft_bounce_rate": 1 / 4,
        "complaint_rate": 0.0,
        "unsubscribe_rate": 1 / 2,
        "complaint_level": None,
        "bounce_level": "warn",
    }

    def shop() -> dict[str, Any] | None:
        (sender,) = get(mailed.api, "/api/v1/stats", sender_id="shop")["senders"]
        return sender if sender["windows"]["1d"] == expected else None

    sender = poll(shop, timeout=20)
    assert sender is not None, get(mailed.api, "/api/v1/stats", sender_id="shop")
    assert sender["sender_id"] == "shop"
    assert sender["windows"] == {"1d": expected, "7d": expected}
    destination = {
        "delivered": 2,
        "deferred": 1,
        "hard_bounces": 1,
        "soft_bounces": 1,
        "hard_bounce_rate": 1 / 3,  # of the recipients whose delivery ended
        "deferral_rate": 1 / 4,  # of the attempts
    }
    # The DSN about ann goes to the shop's own domain but is relay's mail, not the shop's.
    assert sender["destinations"] == [
        {"destination": "example.us", "windows": {"1d": destination, "7d": destination}}
    ]
    # Every sender when none is named.
    every = get(mailed.api, "/api/v1/stats", role="operator")["senders"]
    assert [s["sender_id"] for s in every] == ["shop"]
