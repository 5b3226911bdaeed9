"""Sender profiles over the admin API: operators and compliance officers read them with their
pause state and DKIM selectors; only operators change them, each change audited first; a domain
of another sender is 409 and a bad profile 422, and neither changes anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from relay.signing.keys import generate
from tests.api.admin import OTHER_SENDER_ID, SENDER_ID, AdminApi, start_admin_api
from tests.support.relay_process import RelayProcess

NEW_PROFILE = {
    "legal_name": "New Co",
    "postal_address": "2 High St, Leeds",
    "contact": "privacy@new.example",
    "verified_domains": ["new.example"],
    "default_jurisdiction": "GB",
    "message_class": "transactional",
}


@pytest.fixture
def with_dkim(make_relay: Callable[..., RelayProcess], tmp_path: Path) -> AdminApi:
    """A relay with two RSA keys for shop.example (a rotation: s2024 then s2025) and an
    Ed25519 one; none for other.example."""
    keys = tmp_path / "dkim"
    old = generate("shop.example", "s2024", keys)
    new = generate("shop.example", "s2025", keys)
    ed = generate("shop.example", "ed2025", keys, algorithm="ed25519-sha256")
    config = {
        "dkim": {
            "keys": [
                {
                    "domain": "shop.example",
                    "selector": "s2024",
                    "private_key": str(old.private_key_path),
                },
                {
                    "domain": "shop.example",
                    "selector": "s2025",
                    "private_key": str(new.private_key_path),
                },
                {
                    "domain": "shop.example",
                    "selector": "ed2025",
                    "private_key": str(ed.private_key_path),
                    "algorithm": "ed25519-sha256",
                },
            ]
        }
    }
    return start_admin_api(make_relay(config))


def test_readers_see_profiles_with_pause_state_and_dkim_selectors(with_dkim):
    for role in ("operator", "compliance"):
        with with_dkim.as_role(role) as client:
            listed = client.get("/api/v1/senders")
            one = client.get(f"/api/v1/senders/{SENDER_ID}")
        assert listed.status_code == 200, listed.text
        assert [s["sender_id"] for s in listed.json()] == [OTHER_SENDER_ID, SENDER_ID]
        assert one.status_code == 200, one.text
    shop = one.json()
    assert shop["verified_domains"] == ["shop.example"]
    assert shop["legal_name"] == "Shop Ltd"
    assert shop["pause"] == {
        "paused": False,
        "action": None,
        "at": None,
        "reason": None,
        "source": None,
    }
    selectors = {key["selector"]: key for key in shop["dkim"]}
    assert set(selectors) == {"s2024", "s2025", "ed2025"}
    assert selectors["s2025"] == {
        "verified_domain": "shop.example",
        "domain": "shop.example",
        "selector": "s2025",
        "algorithm": "rsa-sha256",
        "bits": 2048,
        "record_name": "s2025._domainkey.shop.example",
        "active": True,
    }
    assert selectors["s2024"]["active"] is False  # rotated out, still shown
    assert selectors["ed2025"]["algorithm"] == "ed25519-sha256"
    assert selectors["ed2025"]["active"] is True
    other = next(s for s in listed.json() if s["sender_id"] == OTHER_SENDER_ID)
    assert other["dkim"] == []

    with with_dkim.as_role("operator") as client:
        missing = client.get("/api/v1/senders/nobody")
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "error": "no sender profile 'nobody'"}


def test_roles_mailer_and_anonymous_cannot_read_and_only_operators_change(admin_api):
    changes = [
        ("PUT", f"/api/v1/senders/{SENDER_ID}", {**NEW_PROFILE, "verified_domains": ["x.test"]}),
        ("POST", f"/api/v1/senders/{SENDER_ID}/domains", {"domain": "x.test"}),
        ("DELETE", f"/api/v1/senders/{SENDER_ID}/domains/shop.example", None),
        ("POST", f"/api/v1/senders/{SENDER_ID}/pause", {"reason": "r"}),
        ("POST", f"/api/v1/senders/{SENDER_ID}/resume", {"reason": "r"}),
    ]
    for role, expected in (("compliance", 403), ("mailer", 403), (None, 401)):
        with admin_api.as_role(role) as client:
            for method, path, body in changes:
                response = client.request(method, path, json=body)
                assert response.status_code == expected, (role, method, path, response.text)
    for role, expected in (("mailer", 403), (None, 401)):
        with admin_api.as_role(role) as client:
            assert client.get("/api/v1/senders").status_code == expected
            assert client.get(f"/api/v1/senders/{SENDER_ID}").status_code == expected
    assert admin_api.audit("admin") == []  # nothing refused was recorded as a change
    with admin_api.as_role("compliance") as client:
        shop = client.get(f"/api/v1/senders/{SENDER_ID}").json()
    assert shop["verified_domains"] == ["shop.example"]
    assert shop["pause"]["paused"] is False


def test_put_creates_then_replaces_a_profile_audited_first(admin_api):
    with admin_api.as_role("operator") as client:
        created = client.put("/api/v1/senders/newco", json=NEW_PROFILE)
        assert created.status_code == 201, created.text
        assert created.json()["sender_id"] == "newco"
        assert created.json()["message_class"] == "transactional"
        replaced = client.put(
            "/api/v1/senders/newco",
            json={**NEW_PROFILE, "sender_id": "newco", "legal_name": "New Co Ltd"},
        )
        assert replaced.status_code == 200, replaced.text
        assert client.get("/api/v1/senders/newco").json()["legal_name"] == "New Co Ltd"

    records = admin_api.audit("admin")
    assert [r["action"] for r in records] == ["sender-put", "sender-put"]
    assert records[0]["detail"] == "create sender profile 'newco'"
    assert records[1]["detail"] == "replace sender profile 'newco'"
    assert records[1]["sender_id"] == "newco"
    assert records[1]["inputs"]["token_name"] == "test-operator"
    assert records[1]["inputs"]["profile"]["legal_name"] == "New Co Ltd"


def test_bad_profiles_and_taken_domains_change_nothing(admin_api):
    with admin_api.as_role("operator") as client:
        mismatch = client.put(
            "/api/v1/senders/newco", json={**NEW_PROFILE, "sender_id": "someone-else"}
        )
        invalid = client.put(
            "/api/v1/senders/newco",
            json={**NEW_PROFILE, "contact": "nobody", "verified_domains": [], "extra": 1},
        )
        taken = client.put(
            "/api/v1/senders/newco",
            json={**NEW_PROFILE, "verified_domains": ["new.example", "shop.example"]},
        )
        add_taken = client.post(
            f"/api/v1/senders/{OTHER_SENDER_ID}/domains", json={"domain": "shop.example"}
        )
        add_bad = client.post(f"/api/v1/senders/{SENDER_ID}/domains", json={"domain": "no"})
        remove_last = client.delete(f"/api/v1/senders/{SENDER_ID}/domains/shop.example")
        remove_absent = client.delete(f"/api/v1/senders/{SENDER_ID}/domains/other.example")
        unknown = client.post("/api/v1/senders/nobody/domains", json={"domain": "n.example"})
        assert client.get("/api/v1/senders/newco").status_code == 404

    assert mismatch.status_code == 422, mismatch.text
    assert "someone-else" in mismatch.json()["error"]
    assert invalid.status_code == 422, invalid.text
    fields = {field["field"] for field in invalid.json()["fields"]}
    assert {"body.contact", "body.verified_domains", "body.extra"} <= fields
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"] == "domain 'shop.example' is a verified domain of sender 'shop'"
    assert add_taken.status_code == 409
    assert add_bad.status_code == 422
    assert remove_last.status_code == 409
    assert "at least one verified From domain" in remove_last.json()["error"]
    assert remove_absent.status_code == 404
    assert unknown.status_code == 404
    assert admin_api.audit("admin") == []


def test_verified_domains_are_added_and_removed(admin_api):
    with admin_api.as_role("operator") as client:
        added = client.post(
            f"/api/v1/senders/{SENDER_ID}/domains", json={"domain": "Mail.Shop.Test."}
        )
        again = client.post(
            f"/api/v1/senders/{SENDER_ID}/domains", json={"domain": "mail.shop.test"}
        )
        removed = client.delete(f"/api/v1/senders/{SENDER_ID}/domains/shop.example")
    assert added.status_code == 200, added.text
    assert added.json()["changed"] is True
    assert added.json()["sender"]["verified_domains"] == ["shop.example", "mail.shop.test"]
    assert again.json()["changed"] is False
    assert removed.status_code == 200, removed.text
    assert removed.json()["sender"]["verified_domains"] == ["mail.shop.test"]
    records = admin_api.audit("admin")
    assert [(r["action"], r["inputs"]["domain"]) for r in records] == [
        ("sender-domain-add", "mail.shop.test"),
        ("sender-domain-remove", "shop.example"),
    ]


def test_pause_and_resume_are_journalled_audited_and_say_whether_they_changed(admin_api):
    with admin_api.as_role("operator") as client:
        paused = client.post(
            f"/api/v1/senders/{SENDER_ID}/pause", json={"reason": "complaints from Acme"}
        )
        again = client.post(f"/api/v1/senders/{SENDER_ID}/pause", json={"reason": "again"})
        shown = client.get(f"/api/v1/senders/{SENDER_ID}").json()["pause"]
        resumed = client.post(f"/api/v1/senders/{SENDER_ID}/resume")
        unknown = client.post("/api/v1/senders/nobody/pause", json={"reason": "x"})
    assert paused.status_code == 200, paused.text
    assert paused.json()["changed"] is True
    assert paused.json()["sender"]["pause"]["paused"] is True
    assert again.json()["changed"] is False
    assert shown["paused"] is True
    assert shown["reason"] == "complaints from Acme"
    assert shown["source"] == "operator"
    assert resumed.json()["changed"] is True
    assert resumed.json()["sender"]["pause"]["paused"] is False
    assert resumed.json()["sender"]["pause"]["reason"] == "resumed by the operator"
    assert unknown.status_code == 404

    admin = [(r["action"], r["sender_id"]) for r in admin_api.audit("admin")]
    assert admin == [
        ("sender-pause", SENDER_ID),
        ("sender-pause", SENDER_ID),
        ("sender-resume", SENDER_ID),
    ]
    journal = [(r["action"], r["detail"]) for r in admin_api.audit("sender")]
    assert journal == [("pause", "complaints from Acme"), ("resume", "resumed by the operator")]
