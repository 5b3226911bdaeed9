"""The consent routes of the admin API: records (immutable, checked as imports are), import,
withdrawal, and data-subject requests with their one-month deadline (EU-RESPONSE-1M)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from relay.api.deadlines import due_date
from tests.api.admin import SENDER_ID

API = "/api/v1"
ERIN = "erin@example.org"


def record(record_id="r-1", **changes):
    row = {
        "record_id": record_id,
        "address": ERIN,
        "sender_id": SENDER_ID,
        "scope": ["news"],
        "basis": "confirmed_optin",
        "jurisdictions": ["EU"],
        "obtained_at": "2024-03-01T12:00:00+01:00",
        "source": "form:signup-v3 ip=192.0.2.7",
        "evidence_ref": "doi-log/0001",
        "affirmative_action": True,
    }
    row.update(changes)
    return {key: value for key, value in row.items() if value is not None}


@pytest.mark.parametrize(
    ("role", "status"), [("operator", 201), ("compliance", 201), ("mailer", 403), (None, 401)]
)
def test_who_may_add_and_read_consent(admin_api, role, status):
    with admin_api.as_role(role) as client:
        added = client.post(f"{API}/consent/records", json=record())
        listed = client.get(f"{API}/consent/records", params={"address": ERIN})
        requests = client.get(f"{API}/requests")
    assert added.status_code == status, added.text
    assert listed.status_code == (200 if status == 201 else status)
    assert requests.status_code == (200 if status == 201 else status)
    if status == 201:
        assert [item["record_id"] for item in listed.json()["items"]] == ["r-1"]
        (event,) = admin_api.audit()
        assert event["action"] == "consent-add"
        assert added.json()["audit_ref"] == event["hash"]
    else:
        assert admin_api.audit() == []


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"evidence_ref": None}, "evidence_ref", "EU-CONSENT-PROOF"),
        ({"obtained_at": None}, "obtained_at", "EU-CONSENT-PROOF"),
        ({"affirmative_action": False}, "affirmative_action", "EU-CONSENT-NOT-PRETICKED"),
        ({"bundled": True}, "bundled", "EU-CONSENT-NOT-PRETICKED"),
    ],
)
def test_a_record_without_proof_or_affirmative_act_is_refused(admin_api, change, field, rule):
    with admin_api.as_role("compliance") as client:
        refused = client.post(f"{API}/consent/records", json=record(**change))
        found = client.get(f"{API}/consent/records/r-1")
    assert refused.status_code == 422
    (problem,) = refused.json()["fields"]
    assert problem["field"] == f"body.{field}"
    assert rule in problem["problem"]
    assert found.status_code == 404
    assert admin_api.audit() == []


def test_records_are_immutable_and_paged(admin_api):
    with admin_api.as_role("operator") as client:
        for n in range(5):
            assert client.post(f"{API}/consent/records", json=record(f"r-{n}")).status_code == 201
        again = client.post(f"{API}/consent/records", json=record("r-2", scope=["offers"]))
        first = client.get(
            f"{API}/consent/records", params={"sender_id": SENDER_ID, "limit": 3}
        ).json()
        second = client.get(
            f"{API}/consent/records",
            params={"sender_id": SENDER_ID, "limit": 3, "cursor": first["next_cursor"]},
        ).json()
        one = client.get(f"{API}/consent/records/r-2").json()
    assert again.status_code == 409
    assert "immutable" in again.json()["error"]
    assert [i["record_id"] for i in first["items"] + second["items"]] == [
        f"r-{n}" for n in range(5)
    ]
    assert second["next_cursor"] is None
    assert one["scope"] == ["news"]  # unchanged by the refused second write


def test_consent_import_all_or_nothing(admin_api):
    good = (
        json.dumps(record("r-a"))
        + "\n"
        + json.dumps(record("r-b", address="fay@example.org"))
        + "\n"
    )
    bad = json.dumps(record("r-c")) + "\n" + json.dumps(record("r-d", evidence_ref=None)) + "\n"
    with admin_api.as_role("compliance") as client:
        refused = client.post(
            f"{API}/consent/import", content=bad, headers={"content-type": "application/x-ndjson"}
        )
        imported = client.post(
            f"{API}/consent/import", content=good, headers={"content-type": "application/x-ndjson"}
        )
        repeated = client.post(
            f"{API}/consent/import", content=good, headers={"content-type": "application/x-ndjson"}
        )
        listed = client.get(f"{API}/consent/records", params={"sender_id": SENDER_ID}).json()
    assert refused.status_code == 422
    assert refused.json()["fields"][0]["problem"].startswith(
        "line 2: evidence_ref: required by EU-CONSENT-PROOF"
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["added"] == 2
    assert repeated.status_code == 409
    assert [item["record_id"] for item in listed["items"]] == ["r-a", "r-b"]
    imports = [r for r in admin_api.audit() if r["action"] == "consent-import"]
    assert [r["inputs"]["rows"] for r in imports] == [2, 2]  # the refused repeat recorded too


def test_withdrawal_sets_withdrawn_at_on_the_covering_records_only(admin_api):
    with admin_api.as_role("compliance") as client:
        client.post(f"{API}/consent/records", json=record("news-only"))
        client.post(f"{API}/consent/records", json=record("offers-only", scope=["offers"]))
        client.post(f"{API}/consent/records", json=record("everything", scope="*"))
        withdrawn = client.post(
            f"{API}/consent/withdraw",
            json={"address": ERIN, "sender_id": SENDER_ID, "list_id": "news"},
        )
        again = client.post(
            f"{API}/consent/withdraw",
            json={"address": ERIN, "sender_id": SENDER_ID, "list_id": "news"},
        )
        none = client.post(
            f"{API}/consent/withdraw",
            json={"address": "nobody@example.org", "sender_id": SENDER_ID},
        )
        records = {
            item["record_id"]: item
            for item in client.get(f"{API}/consent/records", params={"address": ERIN}).json()[
                "items"
            ]
        }
    assert withdrawn.status_code == 200, withdrawn.text
    assert sorted(r["record_id"] for r in withdrawn.json()["withdrawn"]) == [
        "everything",
        "news-only",
    ]
    assert again.json()["withdrawn"] == []
    assert sorted(again.json()["already_withdrawn"]) == ["everything", "news-only"]
    assert none.status_code == 404
    assert records["offers-only"]["withdrawn_at"] is None
    assert records["news-only"]["withdrawn_at"] is not None
    (event,) = [r for r in admin_api.audit() if r["action"] == "consent-withdraw"]
    assert event["inputs"]["record_ids"] == ["everything", "news-only"]
    assert withdrawn.json()["audit_ref"] == event["hash"]


def test_due_date_is_one_calendar_month_later():
    assert due_date(datetime(2025, 1, 31, 9, tzinfo=UTC)) == datetime(2025, 2, 28, 9, tzinfo=UTC)
    assert due_date(datetime(2024, 1, 31, tzinfo=UTC)) == datetime(2024, 2, 29, tzinfo=UTC)
    assert due_date(datetime(2025, 12, 15, tzinfo=UTC)) == datetime(2026, 1, 15, tzinfo=UTC)


def test_data_subject_requests_are_tracked_to_their_deadline(admin_api):
    now = datetime.now(UTC)
    with admin_api.as_role("compliance") as client:
        fresh = client.post(
            f"{API}/requests", json={"kind": "access", "address": ERIN, "sender_id": SENDER_ID}
        )
        near = client.post(
            f"{API}/requests",
            json={
                "kind": "erasure",
                "address": ERIN,
                "sender_id": SENDER_ID,
                "received_at": (now - timedelta(days=27)).isoformat(),
            },
        )
        late = client.post(
            f"{API}/requests",
            json={
                "kind": "objection",
                "address": ERIN,
                "sender_id": SENDER_ID,
                "received_at": (now - timedelta(days=40)).isoformat(),
            },
        )
        future = client.post(
            f"{API}/requests",
            json={
                "kind": "access",
                "address": ERIN,
                "sender_id": SENDER_ID,
                "received_at": (now + timedelta(days=2)).isoformat(),
            },
        )
        bad_kind = client.post(
            f"{API}/requests", json={"kind": "gossip", "address": ERIN, "sender_id": SENDER_ID}
        )
        listed = client.get(f"{API}/requests", params={"open": "true"}).json()["items"]
        done = client.post(
            f"{API}/requests/{near.json()['request_id']}/complete", json={"note": "sent"}
        )
        twice = client.post(f"{API}/requests/{near.json()['request_id']}/complete")
        missing = client.post(f"{API}/requests/dsr-nothing/complete")
        still_open = client.get(f"{API}/requests", params={"open": "true"}).json()["items"]
        every = client.get(f"{API}/requests").json()["items"]
    assert fresh.status_code == near.status_code == late.status_code == 201, fresh.text
    assert future.status_code == 422
    assert "received_at" in future.json()["error"]
    assert bad_kind.status_code == 422
    assert bad_kind.json()["fields"][0]["field"] == "body.kind"
    by_kind = {item["kind"]: item for item in listed}
    assert [item["kind"] for item in listed] == ["objection", "erasure", "access"]  # soonest due
    assert by_kind["access"]["alert"] is False
    assert by_kind["access"]["days_left"] >= 27
    assert by_kind["erasure"]["alert"] is True
    assert by_kind["erasure"]["overdue"] is False
    assert by_kind["objection"]["overdue"] is True
    assert by_kind["objection"]["days_left"] < 0
    assert done.status_code == 200
    assert done.json()["completed_at"] is not None
    assert done.json()["alert"] is False
    assert done.json()["days_left"] is None
    assert twice.status_code == 409
    assert missing.status_code == 404
    assert [item["kind"] for item in still_open] == ["objection", "access"]
    assert len(every) == 3
    actions = [r["action"] for r in admin_api.audit()]
    assert actions == ["request-add"] * 3 + ["request-complete"]
    assert all(r["rule_id"] == "EU-RESPONSE-1M" for r in admin_api.audit())
