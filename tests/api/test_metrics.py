"""/metrics in the Prometheus text format: submissions, verdicts by rule, deliveries by result,
HTTP requests and the queue, read with a token like any admin route."""

from __future__ import annotations

import smtplib

import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.policy.files import DEFAULT_POLICY_DIR
from tests.api.admin import start_admin_api
from tests.delivery.helpers import add_mail_domain, submit

GOOD = (
    b"From: news@sender.test\r\nTo: ann@metrics.test\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <m1@sender.test>\r\nSubject: hi\r\n\r\nhello\r\n"
)
NO_FROM = (
    b"To: ann@metrics.test\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    b"Message-ID: <m2@sender.test>\r\nSubject: no author\r\n\r\nhello\r\n"
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_count_what_the_node_did(dns_server, sink, make_relay):
    add_mail_domain(dns_server, "metrics.test", "127.0.0.1")
    relay = make_relay(
        {
            "delivery": {"port": sink.port},
            "policy": {"files": [str(DEFAULT_POLICY_DIR / "protocol.toml")]},
        }
    )
    api = start_admin_api(relay)
    submit(relay, "news@sender.test", ["ann@metrics.test"], GOOD)
    sink.wait_for(1)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(relay, "news@sender.test", ["ann@metrics.test"], NO_FROM)
    assert refused.value.smtp_code == 554
    relay.wait_for_log("status=delivered")

    with api.as_role("compliance") as client:
        assert client.get("/api/v1/token").status_code == 200
        assert client.get("/u/not-a-real-token").status_code == 400
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    assert found["relay_deliveries_total", (("result", "delivered"),)] == 1
    verdict = (("action", "reject"), ("rule", "RFC-5322-REQUIRED"), ("stage", "data"))
    assert found["relay_policy_verdicts_total", verdict] == 1
    assert found["relay_submission_seconds_count", (("reply", "2xx"),)] == 1
    assert found["relay_submission_seconds_count", (("reply", "5xx"),)] == 1
    assert found["relay_queue_recipients", ()] == 0  # delivered: nothing left queued
    assert found["relay_queue_messages", ()] == 0
    assert any(name == "process_resident_memory_bytes" for name, _ in found)
    timed = [
        labels for (name, labels), _ in found.items() if name == "relay_http_request_seconds_count"
    ]
    assert (("method", "GET"), ("route", "/api/v1/token"), ("status", "200")) in timed
    # Labelled by the route's template: an unsubscribe token never becomes a label.
    assert (("method", "GET"), ("route", "/u/{token}"), ("status", "400")) in timed
    assert not any("not-a-real-token" in dict(labels)["route"] for labels in timed)


def test_metrics_need_a_reader_token(admin_api):
    with admin_api.as_role(None) as client:
        assert client.get("/metrics").status_code == 401
    with admin_api.as_role("mailer") as client:
        assert client.get("/metrics").status_code == 403
    with admin_api.as_role("operator") as client:
        assert client.get("/metrics").status_code == 200
