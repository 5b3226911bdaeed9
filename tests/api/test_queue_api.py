"""The queue over the admin API, against a real relay delivering to real sinks: an operator
holds a message (nothing reaches the destination, across a restart too) and releases it
(delivered); bounces one (a DSN reaches the sender's MX) or deletes one (no DSN); lists and
inspects what is queued; sees a refusing destination suspended and slowed. Compliance reads,
and only operators change anything."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.api.admin import AdminApi, start_admin_api
from tests.delivery.helpers import (
    DESTINATION_HOST,
    SENDERS_MX_HOST,
    BounceMx,
    add_mail_domain,
    backoff_file,
    destination_and_senders_mx,
    holds_for,
    receive_dsn,
    shared_port,
    submit,
    wait_until,
)
from tests.support.polling import poll
from tests.support.shaping_sinks import CountingSink, RefusingListener

BUSY = "450 4.2.1 mailbox busy, try again"  # temporary; no backoff rule takes it
BODY = b"From: <news@example.test>\r\nSubject: queued\r\n\r\nhello\r\n"


def queued_relay(
    dns_server: Any,
    make_sink: Callable[..., Any],
    make_relay: Callable[..., Any],
    destination: str,
    sender_domain: str,
    deferred: dict[str, int],
) -> tuple[AdminApi, BounceMx]:
    """A relay whose destination answers each of `deferred` (recipient -> times) BUSY first."""
    mx = destination_and_senders_mx(dns_server, make_sink, destination, sender_domain)
    assert mx.destination is not None
    for recipient, times in deferred.items():
        mx.destination.rcpt_replies[recipient].extend([BUSY] * times)
    return start_admin_api(make_relay(mx.relay_config(retry_schedule=["1s"]))), mx


def only_message(client: httpx.Client, **params: Any) -> str:
    items = client.get("/api/v1/queue/messages", params=params).json()["items"]
    assert len(items) == 1, items
    return str(items[0]["queue_id"])


def wait_for_attempts(client: httpx.Client, queue_id: str, count: int = 1) -> dict[str, Any]:
    def tried() -> dict[str, Any] | None:
        message = client.get(f"/api/v1/queue/messages/{queue_id}").json()
        attempts = [r["attempts"] for r in message["recipients_detail"]]
        return message if min(attempts) >= count else None

    message = poll(tried, 20)
    assert message is not None, f"{queue_id} not attempted {count} time(s)"
    return message


def states(client: httpx.Client, queue_id: str) -> dict[str, str]:
    message = client.get(f"/api/v1/queue/messages/{queue_id}").json()
    return {r["address"]: r["state"] for r in message["recipients_detail"]}


def test_a_held_message_waits_across_a_restart_and_is_delivered_once_released(
    dns_server, make_sink, make_relay
):
    api, mx = queued_relay(
        dns_server,
        make_sink,
        make_relay,
        "hold-dest.test",
        "hold-sender.test",
        {"ann@hold-dest.test": 1},
    )
    assert mx.destination is not None
    submit(api.relay, "news@hold-sender.test", ["ann@hold-dest.test"], BODY)
    with api.as_role("operator") as client:
        queue_id = only_message(client)
        tried = wait_for_attempts(client, queue_id)
        assert tried["recipients_detail"][0]["last_status"] == "4.2.1"
        held = client.post(f"/api/v1/queue/messages/{queue_id}/hold")
        assert held.status_code == 200, held.text
        assert held.json()["changed"] is True
        assert held.json()["message"]["held"] is True
        again = client.post(f"/api/v1/queue/messages/{queue_id}/hold")
        assert again.json()["changed"] is False
    # Retries are due every second; none is made while held.
    assert holds_for(lambda: not mx.destination.messages, 2.5), "delivered while held"

    api.relay.stop()
    api.relay.start()
    assert holds_for(lambda: not mx.destination.messages, 1.5), "delivered after a restart"
    with api.as_role("operator") as client:
        assert only_message(client, held=True) == queue_id
        assert client.get("/api/v1/queue/messages", params={"held": False}).json()["items"] == []
        released = client.post(f"/api/v1/queue/messages/{queue_id}/release")
        assert released.status_code == 200, released.text
        assert released.json()["changed"] is True
        (delivered,) = mx.destination.wait_for(1)
        assert delivered.rcpt_tos == ["ann@hold-dest.test"]
        wait_until(lambda: states(client, queue_id) == {"ann@hold-dest.test": "delivered"})
        done = client.post(f"/api/v1/queue/messages/{queue_id}/release")
        assert done.status_code == 409, done.text
        assert "none of its recipients is queued (delivered)" in done.json()["error"]
    wait_until(lambda: not api.relay.queue_files(), 10, "queue file removed after delivery")
    records = api.audit("admin")
    assert [(r["action"], r["queue_id"]) for r in records] == [
        ("queue-hold", queue_id),
        ("queue-release", queue_id),
    ]
    assert records[0]["inputs"]["token_name"] == "test-operator"


def test_a_bounced_message_sends_a_dsn_to_the_senders_mx(dns_server, make_sink, make_relay):
    sender = "news@bounce-sender.test"
    recipients = ["ann@bounce-dest.test", "bob@bounce-dest.test"]
    api, mx = queued_relay(
        dns_server,
        make_sink,
        make_relay,
        "bounce-dest.test",
        "bounce-sender.test",
        dict.fromkeys(recipients, 1000),
    )
    submit(api.relay, sender, recipients, BODY)
    with api.as_role("operator") as client:
        queue_id = only_message(client)
        wait_for_attempts(client, queue_id)
        no_reason = client.post(f"/api/v1/queue/messages/{queue_id}/bounce", json={})
        assert no_reason.status_code == 422
        bounced = client.post(
            f"/api/v1/queue/messages/{queue_id}/bounce", json={"reason": "campaign withdrawn"}
        )
        assert bounced.status_code == 200, bounced.text
        answer = bounced.json()
        assert answer["changed"] is True
        assert sorted(answer["ended"]) == recipients
        assert answer["dsn_queue_id"]
        assert {r["state"] for r in answer["message"]["recipients_detail"]} == {"bounced"}
        assert (
            client.post(
                f"/api/v1/queue/messages/{queue_id}/bounce", json={"reason": "again"}
            ).status_code
            == 409
        )

    _, dsn = receive_dsn(mx.senders_mx, sender)
    fields = dsn.recipient("ann@bounce-dest.test")
    assert fields["Action"] == "failed"
    assert fields["Status"] == "5.0.0"
    assert fields["Diagnostic-Code"] == "X-Relay; bounced by the operator: campaign withdrawn"
    assert queue_id not in [path.name for path in api.relay.queue_files()]
    wait_until(lambda: not api.relay.queue_files(), 10, "the DSN leaves the queue")
    (record,) = api.audit("admin")
    assert record["action"] == "queue-bounce"
    assert record["queue_id"] == queue_id
    assert record["inputs"]["reason"] == "campaign withdrawn"


def test_a_deleted_message_ends_without_a_dsn_and_only_operators_change_the_queue(
    dns_server, make_sink, make_relay
):
    api, mx = queued_relay(
        dns_server,
        make_sink,
        make_relay,
        "delete-dest.test",
        "delete-sender.test",
        {"ann@delete-dest.test": 1000},
    )
    submit(api.relay, "news@delete-sender.test", ["ann@delete-dest.test"], BODY)
    with api.as_role("operator") as client:
        queue_id = only_message(client)
        wait_for_attempts(client, queue_id)
    base = f"/api/v1/queue/messages/{queue_id}"
    changes = [
        ("POST", f"{base}/hold", None),
        ("POST", f"{base}/release", None),
        ("POST", f"{base}/bounce", {"reason": "r"}),
        ("DELETE", base, None),
    ]
    for role, expected in (("compliance", 403), ("mailer", 403), (None, 401)):
        with api.as_role(role) as client:
            for method, path, body in changes:
                response = client.request(method, path, json=body)
                assert response.status_code == expected, (role, method, path, response.text)
    for role, expected in (("compliance", 200), ("mailer", 403), (None, 401)):
        with api.as_role(role) as client:
            for path in ("/api/v1/queue/messages", base, "/api/v1/queue/destinations"):
                assert client.get(path).status_code == expected, (role, path)
    assert api.audit("admin") == []

    with api.as_role("operator") as client:
        deleted = client.delete(base, params={"reason": "sent by mistake"})
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["ended"] == ["ann@delete-dest.test"]
        assert deleted.json()["dsn_queue_id"] is None
        message = client.get(base).json()
        (recipient,) = message["recipients_detail"]
        assert recipient["state"] == "deleted"
        assert recipient["last_diagnostic"] == "deleted by the operator: sent by mistake"
        assert message["queued"] == 0
        assert client.delete(base).status_code == 409
        assert client.post(f"{base}/hold").status_code == 409
        unknown = client.post("/api/v1/queue/messages/00000000000000DEADBEEF/hold")
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "no message '00000000000000DEADBEEF' in the spool"
        assert client.get("/api/v1/queue/messages").json()["items"] == []
    assert not api.relay.queue_files()
    assert holds_for(lambda: not mx.senders_mx.messages, 1.5), "a DSN after a delete"
    assert [r["action"] for r in api.audit("admin")] == ["queue-delete"]
    assert "status=deleted" in api.relay.log


def test_messages_are_listed_by_sender_domain_and_hold_a_page_at_a_time(
    dns_server, make_sink, make_relay
):
    # news@shop.example is sender "shop", news@other.example sender "other" (tests/api/admin.py).
    recipients = {"a@list-dest.test": 1000, "b@list-dest.test": 1000, "c@list-more.test": 1000}
    api, mx = queued_relay(
        dns_server, make_sink, make_relay, "list-dest.test", "list-sender.test", recipients
    )
    add_mail_domain(dns_server, "list-more.test", DESTINATION_HOST)
    submit(api.relay, "news@shop.example", ["a@list-dest.test"], BODY)
    submit(api.relay, "news@other.example", ["b@list-dest.test"], BODY)
    submit(api.relay, "news@shop.example", ["c@list-more.test"], BODY)
    with api.as_role("compliance") as client:
        first = client.get("/api/v1/queue/messages", params={"limit": 2}).json()
        assert len(first["items"]) == 2
        assert first["next_cursor"] == first["items"][1]["queue_id"]
        second = client.get(
            "/api/v1/queue/messages", params={"limit": 2, "cursor": first["next_cursor"]}
        ).json()
        assert second["next_cursor"] is None
        ids = [item["queue_id"] for item in first["items"] + second["items"]]
        assert len(ids) == 3
        assert ids == sorted(ids)
        by_sender = client.get("/api/v1/queue/messages", params={"sender_id": "shop"}).json()
        assert [item["queue_id"] for item in by_sender["items"]] == [ids[0], ids[2]]
        assert only_message(client, domain="LIST-MORE.test") == ids[2]
        assert client.get("/api/v1/queue/messages", params={"limit": 0}).status_code == 422
        message = client.get(f"/api/v1/queue/messages/{ids[1]}").json()
        assert message["sender_id"] == "other"
        assert message["mail_from"] == "news@other.example"
        assert message["envelope"]["client_address"] == "127.0.0.1"
        (recipient,) = message["recipients_detail"]
        assert recipient["address"] == "b@list-dest.test"
        assert recipient["state"] == "queued"
    with api.as_role("operator") as client:
        assert client.post(f"/api/v1/queue/messages/{ids[0]}/hold").status_code == 200
        assert only_message(client, held=True) == ids[0]
        held = client.get("/api/v1/queue/messages", params={"held": False}).json()["items"]
        assert [item["queue_id"] for item in held] == ids[1:]
        totals = client.get("/api/v1/queue/destinations").json()["totals"]
        assert (totals["messages"], totals["recipients"], totals["held"]) == (3, 3, 1)
    assert mx.destination is not None
    assert not mx.destination.messages


def test_destinations_show_a_refusing_destination_suspended_and_slowed(
    dns_server, make_sink, make_relay, tmp_path
):
    port = shared_port(SENDERS_MX_HOST)
    refusing = make_sink(RefusingListener, host=SENDERS_MX_HOST, port=port)
    add_mail_domain(dns_server, "refusing-api.test", SENDERS_MX_HOST)
    backoff = backoff_file(tmp_path, {"pause-sender": "1h", "suspend": "1m"})
    relay = make_relay(
        {
            "delivery": {
                "port": port,
                "backoff_file": str(backoff),
                "shaping": {"refusing-api.test": {"max_connections": 4, "rate": ["60/1m"]}},
            }
        }
    )
    api = start_admin_api(relay)
    submit(relay, "news@example.test", ["ann@refusing-api.test"], BODY)
    refusing.wait_for_attempts(1)
    relay.wait_for_log("destination refusing-api.test: suspended for 60s")
    with api.as_role("compliance") as client:
        answer = client.get("/api/v1/queue/destinations")
    assert answer.status_code == 200, answer.text
    (destination,) = [d for d in answer.json()["destinations"] if d["name"] == "refusing-api.test"]
    assert destination["max_connections"] == 4
    assert destination["rates"] == ["60/60s"]
    pace = destination["pace"]
    assert pace["suspended_until"] is not None
    assert pace["factor_percent"] == 50
    assert pace["max_connections"] == 2
    assert pace["rates"] == ["30/60s"]
    totals = answer.json()["totals"]
    assert totals["messages"] == 1
    assert totals["recipients"] == 1
    assert totals["sleeping"] + totals["waiting"] == 1  # its retry


def test_a_bounce_during_an_attempt_waits_for_it_and_ends_nothing_it_delivered(
    dns_server, make_sink, make_relay
):
    port = shared_port(DESTINATION_HOST, SENDERS_MX_HOST)
    slow = make_sink(CountingSink, host=DESTINATION_HOST, port=port, reply_delay=0.7)
    senders_mx = make_sink(host=SENDERS_MX_HOST, port=port)
    add_mail_domain(dns_server, "slow-dest.test", DESTINATION_HOST)
    add_mail_domain(dns_server, "slow-sender.test", SENDERS_MX_HOST)
    api = start_admin_api(make_relay({"delivery": {"port": port}}))
    submit(api.relay, "news@slow-sender.test", ["ann@slow-dest.test"], BODY)
    with api.as_role("operator") as client:
        queue_id = only_message(client)
        running = poll(
            lambda: (
                True
                if client.get(f"/api/v1/queue/messages/{queue_id}").json()["attempt_in_progress"]
                else None
            ),
            10,
        )
        assert running, "no attempt seen in progress"
        bounced = client.post(
            f"/api/v1/queue/messages/{queue_id}/bounce", json={"reason": "too late"}
        )
    assert bounced.status_code == 200, bounced.text
    answer = bounced.json()
    assert answer["waited_for_attempt"] is True
    assert answer["changed"] is False
    assert answer["ended"] == []
    assert [r["state"] for r in answer["message"]["recipients_detail"]] == ["delivered"]
    assert "an attempt in progress ended first" in answer["note"]
    (delivered,) = slow.wait_for(1)
    assert delivered.rcpt_tos == ["ann@slow-dest.test"]
    assert holds_for(lambda: not senders_mx.messages, 1.0), "a DSN for a delivered recipient"
