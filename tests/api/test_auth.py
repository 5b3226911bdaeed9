"""Bearer tokens: made by `relay tokens create`, stored hashed, checked on every admin route;
401 without a usable token, 403 for the wrong role, 429 after too many failures."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import httpx

from tests.api.admin import SENDER_ID, AdminApi

RELAY = [sys.executable, "-m", "relay"]


def relay_cli(api: AdminApi, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELAY, *args, "--config", str(api.relay.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_created_token_is_its_last_line_stored_hashed_and_usable(admin_api):
    result = relay_cli(admin_api, "tokens", "create", "--role", "compliance", "--name", "dpo")
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("relay_")
    with sqlite3.connect(admin_api.stores_path) as db:
        stored = db.execute("SELECT * FROM api_tokens WHERE name = 'dpo'").fetchone()
    assert stored is not None
    assert token not in repr(stored)  # only its hash
    with admin_api.client(token=token) as client:
        response = client.get("/api/v1/token")
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "compliance"
    assert response.json()["name"] == "dpo"


def test_a_mailer_token_names_an_existing_sender(admin_api):
    missing = relay_cli(admin_api, "tokens", "create", "--role", "mailer")
    assert missing.returncode == 2
    assert "--sender" in missing.stderr
    unknown = relay_cli(admin_api, "tokens", "create", "--role", "mailer", "--sender", "nobody")
    assert unknown.returncode == 1
    assert "no sender profile 'nobody'" in unknown.stderr
    made = relay_cli(admin_api, "tokens", "create", "--role", "mailer", "--sender", SENDER_ID)
    assert made.returncode == 0, made.stderr
    with admin_api.client(token=made.stdout.splitlines()[-1]) as client:
        assert client.get("/api/v1/token").json()["sender_id"] == SENDER_ID


def test_a_revoked_token_is_refused(admin_api):
    listed = relay_cli(admin_api, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "relay_" not in listed.stdout  # never the secrets
    (operator,) = [line for line in listed.stdout.splitlines() if '"test-operator"' in line]
    token_id = operator.split('"token_id": "')[1].split('"')[0]
    revoked = relay_cli(admin_api, "tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    with admin_api.as_role("operator") as client:
        response = client.get("/api/v1/token")
    assert response.status_code == 401
    assert response.json()["error"] == "the bearer token is unknown or revoked"
    assert "invalid_token" in response.headers["www-authenticate"]


def test_missing_and_wrong_tokens_are_401_with_a_json_body(admin_api):
    with admin_api.as_role(None) as client:
        missing = client.get("/api/v1/token")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["status"] == 401
    assert "Authorization: Bearer" in missing.json()["error"]
    with admin_api.client(token="relay_00000000_guess") as client:
        wrong = client.get("/api/v1/token")
    assert wrong.status_code == 401
    assert "unknown or revoked" in wrong.json()["error"]


def test_failed_authentications_are_rate_limited_per_client(make_relay):
    from tests.api.admin import start_admin_api

    api = start_admin_api(make_relay({"http": {"failed_auth_limit": "3/1m"}}))
    with api.client(token="relay_00000000_guess") as client:
        answers = [client.get("/api/v1/token").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    with api.as_role("operator") as client:
        blocked = client.get("/api/v1/token")
    assert blocked.status_code == 429  # even a good token waits: the client is locked out
    assert int(blocked.headers["retry-after"]) > 0
    assert "too many failed authentications" in blocked.json()["error"]
    assert "authentication failed from 127.0.0.1" in api.relay.log


def test_an_unknown_api_path_is_a_json_404(admin_api):
    response = httpx.get(f"{admin_api.url}/api/v1/nothing-here", timeout=30)
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found"}


def test_operators_manage_tokens_through_the_api_and_each_change_is_audited(admin_api):
    with admin_api.as_role("compliance") as client:
        assert client.get("/api/v1/tokens").status_code == 403
        refused = client.post("/api/v1/tokens", json={"name": "x", "role": "operator"})
        assert refused.status_code == 403
    with admin_api.as_role("operator") as client:
        bad = client.post("/api/v1/tokens", json={"name": "shop-crm", "role": "mailer"})
        assert bad.status_code == 422
        assert "sender_id is required" in bad.json()["error"]
        made = client.post(
            "/api/v1/tokens", json={"name": "shop-crm", "role": "mailer", "sender_id": SENDER_ID}
        )
        assert made.status_code == 201, made.text
        again = client.post(
            "/api/v1/tokens", json={"name": "shop-crm", "role": "mailer", "sender_id": SENDER_ID}
        )
        assert again.status_code == 409
        listed = client.get("/api/v1/tokens")
        assert made.json()["token"] not in listed.text
        assert {token["name"] for token in listed.json()} >= {"shop-crm", "test-operator"}
    new = made.json()
    with admin_api.client(token=new["token"]) as client:
        assert client.get("/api/v1/token").json()["sender_id"] == SENDER_ID
    with admin_api.as_role("operator") as client:
        revoked = client.delete(f"/api/v1/tokens/{new['token_id']}")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        assert client.delete("/api/v1/tokens/nothere").status_code == 404
    with admin_api.client(token=new["token"]) as client:
        assert client.get("/api/v1/token").status_code == 401
    actions = [(record["action"], record["inputs"]["role"]) for record in admin_api.audit()]
    assert actions == [("token-create", "operator"), ("token-revoke", "operator")]
