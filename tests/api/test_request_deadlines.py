"""EU-RESPONSE-1M in the log: a running relay logs a warning for each open data-subject request
due within days or overdue (at start, then hourly), and none for one answered or far off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.admin import SENDER_ID

API = "/api/v1"


def test_requests_near_their_deadline_are_logged(admin_api):
    now = datetime.now(UTC)
    with admin_api.as_role("compliance") as client:
        ids = {}
        for name, days_ago in (("near", 28), ("late", 35), ("answered", 33), ("fresh", 1)):
            response = client.post(
                f"{API}/requests",
                json={
                    "kind": "access",
                    "address": f"{name}@example.eu",
                    "sender_id": SENDER_ID,
                    "received_at": (now - timedelta(days=days_ago)).isoformat(),
                },
            )
            assert response.status_code == 201, response.text
            ids[name] = response.json()["request_id"]
        done = client.post(f"{API}/requests/{ids['answered']}/complete", json={"note": "sent"})
        assert done.status_code == 200, done.text
    relay = admin_api.relay
    relay.stop()
    relay.start()
    relay.wait_for_log(f"data-subject request {ids['late']} (access, sender shop) is overdue")
    log = relay.wait_for_log(f"data-subject request {ids['near']} (access, sender shop) is due")
    warnings = [line for line in log.splitlines() if "WARNING" in line and "data-subject" in line]
    assert len(warnings) == 2, warnings
    assert not any(ids["answered"] in line or ids["fresh"] in line for line in warnings)
