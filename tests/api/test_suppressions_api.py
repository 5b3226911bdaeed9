"""The suppression routes of the admin API: add, remove, list, look up, import, export; every
change audited first; a mailer only for its own sender; bad payloads change nothing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.api.admin import OTHER_SENDER_ID, SENDER_ID, AdminApi, start_admin_api

API = "/api/v1"
ANN = "ann@example.org"


def add(client, address=ANN, sender_id=SENDER_ID, **fields):
    return client.post(
        f"{API}/suppressions", json={"address": address, "sender_id": sender_id, **fields}
    )


def rows_in_store(api: AdminApi) -> int:
    with sqlite3.connect(api.stores_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0])


@pytest.mark.parametrize("role", ["operator", "compliance", "mailer"])
def test_every_role_adds_then_finds_an_entry_audited_first(admin_api, role):
    with admin_api.as_role(role) as client:
        first = add(client, reason="complaint_arf", note="ticket 7")
        again = add(client, reason="complaint_arf")
        lookup = client.get(
            f"{API}/suppressions/lookup",
            params={"address": "ANN@example.org ", "sender_id": SENDER_ID},
        )
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    assert again.status_code == 200
    assert again.json()["created"] is False
    (record,) = [r for r in admin_api.audit() if r["action"] == "suppression-add"]
    entry = first.json()["entry"]
    assert entry["audit_ref"] == record["hash"]
    assert record["inputs"]["role"] == role
    assert record["inputs"]["note"] == "ticket 7"
    assert record["recipient_hash"] == admin_api.hasher.hash(ANN)
    found = lookup.json()
    assert found["suppressed"] is True
    assert found["entry"]["reason"] == "complaint_arf"
    assert "reason complaint_arf" in found["why"]
    assert record["hash"] in found["why"]


def test_a_mailer_acts_only_for_its_own_sender(admin_api):
    with admin_api.as_role("operator") as operator:
        assert add(operator, sender_id=OTHER_SENDER_ID).status_code == 201
        assert add(operator, address="bob@example.org").status_code == 201
    with admin_api.as_role("mailer") as mailer:
        refused = add(mailer, address="carl@example.org", sender_id=OTHER_SENDER_ID)
        lookup = mailer.get(
            f"{API}/suppressions/lookup", params={"address": ANN, "sender_id": OTHER_SENDER_ID}
        )
        listed = mailer.get(f"{API}/suppressions").json()
        other_list = mailer.get(f"{API}/suppressions", params={"sender_id": OTHER_SENDER_ID})
        removal = mailer.delete(
            f"{API}/suppressions", params={"address": ANN, "sender_id": OTHER_SENDER_ID}
        )
        export = mailer.get(f"{API}/suppressions/export")
        imported = mailer.post(
            f"{API}/suppressions/import",
            content=f"address,sender_id\nx@example.org,{SENDER_ID}\ny@example.org,other\n",
            headers={"content-type": "text/csv"},
        )
    assert refused.status_code == 403
    assert "may act only for sender 'shop'" in refused.json()["error"]
    assert lookup.status_code == 403
    assert {item["sender_id"] for item in listed["items"]} == {SENDER_ID}
    assert [item["address"] for item in listed["items"]] == ["bob@example.org"]
    assert other_list.status_code == 403
    assert removal.status_code == 403
    assert "other" not in export.text.split("\n", 1)[1]
    assert imported.status_code == 403
    assert rows_in_store(admin_api) == 2  # nothing of the refused requests


def test_without_a_token_is_401(admin_api):
    with admin_api.as_role(None) as client:
        answers = [
            add(client).status_code,
            client.get(f"{API}/suppressions").status_code,
            client.get(f"{API}/suppressions/export").status_code,
            client.delete(
                f"{API}/suppressions", params={"address": ANN, "sender_id": SENDER_ID}
            ).status_code,
        ]
    assert answers == [401, 401, 401, 401]


def test_bad_payloads_name_the_field_and_change_nothing(admin_api):
    with admin_api.as_role("operator") as client:
        bad_address = add(client, address="not-an-address")
        no_list = add(client, scope="sender+list")
        erasure = add(client, reason="erasure")
        unknown = add(client, colour="red")
        bad_limit = client.get(f"{API}/suppressions", params={"limit": 0})
        bad_cursor = client.get(f"{API}/suppressions", params={"cursor": "nonsense"})
    assert bad_address.status_code == 422
    assert bad_address.json()["fields"][0]["field"] == "body.address"
    assert "scope sender+list needs a list_id" in no_list.json()["error"]
    assert erasure.status_code == 422
    assert "/consent/erasure" in erasure.json()["error"]
    assert unknown.json()["fields"][0]["field"] == "body.colour"
    assert bad_limit.status_code == 422
    assert bad_limit.json()["fields"][0]["field"] == "query.limit"
    assert bad_cursor.status_code == 422
    assert "cursor" in bad_cursor.json()["error"]
    assert rows_in_store(admin_api) == 0
    assert admin_api.audit() == []


def test_removal_is_audited_404_when_absent(admin_api):
    with admin_api.as_role("compliance") as client:
        add(client, scope="sender+list", list_id="weekly")
        sender_wide = client.delete(
            f"{API}/suppressions", params={"address": ANN, "sender_id": SENDER_ID}
        )
        removed = client.delete(
            f"{API}/suppressions",
            params={"address": ANN, "sender_id": SENDER_ID, "list_id": "weekly"},
        )
        again = client.delete(
            f"{API}/suppressions",
            params={"address": ANN, "sender_id": SENDER_ID, "list_id": "weekly"},
        )
        lookup = client.get(
            f"{API}/suppressions/lookup",
            params={"address": ANN, "sender_id": SENDER_ID, "list_id": "weekly"},
        ).json()
    assert sender_wide.status_code == 404  # only the list entry exists
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"]["list_id"] == "weekly"
    assert again.status_code == 404
    assert lookup["suppressed"] is False
    assert lookup["why"].startswith("not suppressed")
    actions = [record["action"] for record in admin_api.audit()]
    assert actions == ["suppression-add", "suppression-remove"]


def test_listing_filters_and_pages_without_repeats(admin_api):
    rows = "".join(
        f"user{n}@example.org,{SENDER_ID if n % 2 else OTHER_SENDER_ID},"
        f"{'hard_bounce' if n % 3 else 'complaint_arf'},2024-01-{1 + n % 28:02d}T00:00:00Z\n"
        for n in range(250)
    )
    with admin_api.as_role("operator") as client:
        imported = client.post(
            f"{API}/suppressions/import",
            content="address,sender_id,reason,received_at\n" + rows,
            headers={"content-type": "text/csv"},
        )
        assert imported.status_code == 200, imported.text
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 40, "sender_id": SENDER_ID}
            if cursor:
                params["cursor"] = cursor
            page = client.get(f"{API}/suppressions", params=params).json()
            seen += [item["address"] for item in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        complaints = client.get(
            f"{API}/suppressions",
            params={
                "reason": "complaint_arf",
                "since": "2024-01-10T00:00:00Z",
                "until": "2024-01-11T00:00:00Z",
                "limit": 1000,
            },
        ).json()["items"]
        one = client.get(f"{API}/suppressions", params={"address": "USER7@example.org"}).json()
    assert len(seen) == 125 == len(set(seen))
    assert pages == 4
    expected = {f"user{n}@example.org" for n in range(250) if n % 3 == 0 and 1 + n % 28 == 10}
    assert {item["address"] for item in complaints} == expected
    assert [item["address"] for item in one["items"]] == ["user7@example.org"]


def test_import_problems_name_lines_and_import_nothing(admin_api):
    with admin_api.as_role("operator") as client:
        bad_csv = client.post(
            f"{API}/suppressions/import",
            content="address,sender_id\nok@example.org,shop\nnope,shop\n",
            headers={"content-type": "text/csv"},
        )
        bad_jsonl = client.post(
            f"{API}/suppressions/import",
            content='{"address": "ok@example.org", "sender_id": "shop"}\n{oops\n',
            headers={"content-type": "application/x-ndjson"},
        )
        wrong_type = client.post(
            f"{API}/suppressions/import", content="{}", headers={"content-type": "application/json"}
        )
        empty = client.post(
            f"{API}/suppressions/import", content="", headers={"content-type": "text/csv"}
        )
    assert bad_csv.status_code == 422
    assert bad_csv.json()["fields"] == [
        {
            "field": "body",
            "problem": "line 3: address: 'nope' does not look like an e-mail address"
            " (local@domain.tld)",
        }
    ]
    assert bad_jsonl.status_code == 422
    assert bad_jsonl.json()["fields"][0]["problem"].startswith("line 2: not valid JSON")
    assert wrong_type.status_code == 415
    assert empty.status_code == 422
    assert rows_in_store(admin_api) == 0
    assert admin_api.audit() == []


def test_an_import_is_one_audit_record_named_by_its_entries(admin_api):
    body = "".join(
        json.dumps({"address": f"u{n}@example.org", "sender_id": SENDER_ID}) + "\n"
        for n in range(3)
    )
    with admin_api.as_role("compliance") as client:
        first = client.post(
            f"{API}/suppressions/import",
            content=body,
            headers={"content-type": "application/x-ndjson"},
        ).json()
        again = client.post(
            f"{API}/suppressions/import",
            content=body,
            headers={"content-type": "application/x-ndjson; charset=utf-8"},
        ).json()
        items = client.get(f"{API}/suppressions").json()["items"]
    assert (first["rows"], first["added"], first["already_present"]) == (3, 3, 0)
    assert (again["added"], again["already_present"]) == (0, 3)
    records = [r for r in admin_api.audit() if r["action"] == "suppression-import"]
    assert len(records) == 2
    assert records[0]["hash"] == first["audit_ref"]
    assert records[0]["inputs"]["rows"] == 3
    assert records[0]["inputs"]["sha256"] == first["sha256"]
    assert {item["audit_ref"] for item in items} == {first["audit_ref"]}


def test_an_import_larger_than_max_import_size_is_413_and_imports_nothing(make_relay):
    api = start_admin_api(make_relay({"http": {"max_import_size": 4096}}))
    rows = "".join(f"user{n}@example.us,{SENDER_ID}\n" for n in range(200))
    with api.as_role("operator") as client:
        response = client.post(
            f"{API}/suppressions/import",
            content=f"address,sender_id\n{rows}",
            headers={"content-type": "text/csv"},
        )
    assert response.status_code == 413
    assert "split the import" in response.json()["error"]
    assert rows_in_store(api) == 0
    assert api.audit() == []
