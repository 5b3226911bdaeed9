"""Erasure (GDPR Art. 17, PIPL Art. 47): the address's consent records, soft bounces and clear
copies go, no clear copy stays in the stores' files, the keyed hash stays suppressed with reason
erasure, and the erasure entry cannot be removed. The audit record names the hash only."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from relay.stores.models import SoftBounce
from relay.stores.sqlite import SqliteStores
from tests.api.admin import OTHER_SENDER_ID, SENDER_ID, AdminApi

API = "/api/v1"
GINA = "gina.erasable@example.org"
KEEP = "keep.me@example.org"


def consent(record_id, address, sender_id=SENDER_ID):
    return {
        "record_id": record_id,
        "address": address,
        "sender_id": sender_id,
        "scope": "*",
        "basis": "express_optin",
        "jurisdictions": ["EU"],
        "obtained_at": "2024-03-01T12:00:00Z",
        "source": "form:signup",
        "evidence_ref": "doi-log/0001",
        "affirmative_action": True,
    }


def clear_copies(api: AdminApi, needle: str) -> list[str]:
    files = [api.stores_path, Path(f"{api.stores_path}-wal")]
    return [str(path) for path in files if path.exists() and needle.encode() in path.read_bytes()]


def add_soft_bounce(api: AdminApi, address: str) -> None:
    async def add() -> None:
        async with SqliteStores(api.stores_path, api.hasher, True) as stores:
            bounce = SoftBounce(
                api.hasher.hash(address), SENDER_ID, datetime.now(UTC), "4.2.2", "mailboxfull", "q1"
            )
            await stores.add_soft_bounce(bounce, datetime(2000, 1, 1, tzinfo=UTC))

    asyncio.run(add())


def test_erasure_leaves_only_the_keyed_hash_suppressed(admin_api):
    with admin_api.as_role("operator") as client:
        for n, (address, sender) in enumerate(
            [(GINA, SENDER_ID), (GINA, OTHER_SENDER_ID), (KEEP, SENDER_ID)]
        ):
            assert (
                client.post(
                    f"{API}/consent/records", json=consent(f"r-{n}", address, sender)
                ).status_code
                == 201
            )
        for address in (GINA, KEEP):
            for fields in (
                {},
                {"scope": "sender+list", "list_id": "weekly", "reason": "hard_bounce"},
            ):
                added = client.post(
                    f"{API}/suppressions",
                    json={"address": address, "sender_id": SENDER_ID, **fields},
                )
                assert added.status_code == 201, added.text
        request = client.post(
            f"{API}/requests", json={"kind": "erasure", "address": GINA, "sender_id": SENDER_ID}
        )
        assert request.status_code == 201
    add_soft_bounce(admin_api, GINA)
    assert clear_copies(admin_api, GINA)  # the test can see a clear copy when there is one

    with admin_api.as_role("compliance") as client:
        erased = client.post(f"{API}/consent/erasure", json={"address": GINA})
        lookup = client.get(
            f"{API}/suppressions/lookup", params={"address": GINA, "sender_id": SENDER_ID}
        ).json()
        other = client.get(
            f"{API}/suppressions/lookup", params={"address": GINA, "sender_id": OTHER_SENDER_ID}
        ).json()
        records = client.get(f"{API}/consent/records", params={"address": GINA}).json()["items"]
        kept = client.get(f"{API}/consent/records", params={"address": KEEP}).json()["items"]
        removal = client.delete(
            f"{API}/suppressions", params={"address": GINA, "sender_id": SENDER_ID}
        )
        listed = client.get(f"{API}/suppressions", params={"address": GINA}).json()["items"]
        requests = client.get(f"{API}/requests").json()["items"]

    assert erased.status_code == 200, erased.text
    result = erased.json()
    assert result["senders"] == [OTHER_SENDER_ID, SENDER_ID]
    assert sorted(result["consents_deleted"]) == ["r-0", "r-1"]
    assert result["suppressions_cleared"] == 2
    assert result["soft_bounces_deleted"] == 1
    assert result["requests_cleared"] == 1
    assert result["suppressions_added"] == 2
    assert clear_copies(admin_api, GINA) == []
    assert clear_copies(admin_api, KEEP)  # others' data untouched
    assert lookup["suppressed"] is True
    assert lookup["entry"]["reason"] == "erasure"
    assert lookup["entry"]["address"] is None
    assert lookup["entry"]["address_hash"] == admin_api.hasher.hash(GINA)
    assert "reason erasure" in lookup["why"]
    assert other["entry"]["reason"] == "erasure"
    assert records == []
    assert [item["record_id"] for item in kept] == ["r-2"]
    assert removal.status_code == 409
    assert "erasure" in removal.json()["error"]
    assert {item["reason"] for item in listed} == {"erasure", "hard_bounce"}
    assert all(item["address"] is None for item in listed)
    assert requests[0]["address"] is None
    (event,) = [r for r in admin_api.audit() if r["action"] == "erasure"]
    assert event["rule_id"] == "EU-ERASURE"
    assert event["recipient_hash"] == admin_api.hasher.hash(GINA)
    assert GINA not in json.dumps(event)
    assert lookup["entry"]["audit_ref"] == event["hash"] == result["audit_ref"]


def test_erasure_for_one_sender_and_who_may_ask(admin_api):
    with admin_api.as_role("operator") as client:
        client.post(f"{API}/consent/records", json=consent("r-shop", GINA))
        client.post(f"{API}/consent/records", json=consent("r-other", GINA, OTHER_SENDER_ID))
    with admin_api.as_role("mailer") as mailer:
        refused = mailer.post(
            f"{API}/consent/erasure", json={"address": GINA, "sender_id": SENDER_ID}
        )
    with admin_api.as_role(None) as anonymous:
        anonymous_answer = anonymous.post(f"{API}/consent/erasure", json={"address": GINA})
    with admin_api.as_role("compliance") as client:
        bad = client.post(f"{API}/consent/erasure", json={"address": "nope"})
        unknown = client.post(
            f"{API}/consent/erasure", json={"address": GINA, "sender_id": "nobody"}
        )
        erased = client.post(
            f"{API}/consent/erasure", json={"address": GINA, "sender_id": SENDER_ID}
        )
        left = client.get(f"{API}/consent/records", params={"address": GINA}).json()["items"]
        export = client.get(f"{API}/suppressions/export", params={"sender_id": SENDER_ID})
    assert refused.status_code == 403
    assert anonymous_answer.status_code == 401
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["field"] == "body.address"
    assert unknown.status_code == 404
    assert erased.json()["senders"] == [SENDER_ID]
    assert [item["record_id"] for item in left] == ["r-other"]
    # The erasure entry is exported by its keyed hash, which imports again on a node sharing
    # the key.
    (row,) = export.text.strip().splitlines()[1:]
    assert row.startswith(f",{admin_api.hasher.hash(GINA)},{SENDER_ID},sender,,erasure,")
    with admin_api.as_role("operator") as client:
        reimported = client.post(
            f"{API}/suppressions/import", content=export.text, headers={"content-type": "text/csv"}
        )
    assert reimported.status_code == 200, reimported.text
    assert reimported.json()["already_present"] == 1
