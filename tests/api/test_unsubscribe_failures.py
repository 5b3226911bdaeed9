"""When the audit log or the stores cannot be written, a one-click request is answered 503 with
Retry-After (the recipient or the mailbox provider tries again), never a traceback; the audit
record comes first, so no suppression is stored without one. The app runs in-process over real
SQLite stores and a real audit log, closed under it."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import httpx

from relay.api.app import create_app
from relay.audit.log import AuditLog
from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.stores.hashing import AddressHasher
from relay.stores.sqlite import SqliteStores
from tests.api.conftest import ONE_CLICK, RECIPIENT, SENDER_ID

HASHER = AddressHasher(b"k" * 32)
TOKENS = UnsubscribeTokens(b"t" * 32)


def one_click_while_closed(tmp_path: Path, closed: str) -> tuple[httpx.Response, bool]:
    """POST a one-click request with the stores or the audit log (`closed`) closed; the answer
    and whether the suppression was stored."""

    async def scenario() -> tuple[httpx.Response, bool]:
        stores = SqliteStores(tmp_path / "stores.sqlite", HASHER, True)
        await stores.open()
        audit = AuditLog(tmp_path / "audit", node="test")
        await audit.open()
        await {"stores": stores, "audit": audit}[closed].close()
        token = TOKENS.issue(
            sender_id=SENDER_ID,
            list_id=None,
            address_hash=HASHER.hash(RECIPIENT),
            issued=date.today(),
        )
        transport = httpx.ASGITransport(app=create_app(TOKENS, stores, audit))
        async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as client:
            response = await client.post(f"/u/{token}", data=ONE_CLICK)
        await stores.open()
        stored = await stores.suppression_for(RECIPIENT, SENDER_ID, None) is not None
        await stores.close()
        await audit.close()
        return response, stored

    return asyncio.run(scenario())


def audit_records(tmp_path: Path) -> list[dict[str, object]]:
    (log_file,) = (tmp_path / "audit").glob("audit-*.jsonl")
    return [json.loads(line) for line in log_file.read_text().splitlines()]


def assert_retry_later(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "60"
    assert response.headers["content-type"].startswith("text/plain")
    assert "try again later" in response.text
    assert "Traceback" not in response.text


def test_store_failure_answers_503_after_the_request_is_audited(tmp_path):
    response, stored = one_click_while_closed(tmp_path, "stores")
    assert_retry_later(response)
    assert not stored
    (record,) = audit_records(tmp_path)
    assert (record["stage"], record["action"]) == ("unsubscribe", "suppress")


def test_audit_failure_answers_503_and_stores_nothing(tmp_path):
    response, stored = one_click_while_closed(tmp_path, "audit")
    assert_retry_later(response)
    assert not stored
    assert audit_records(tmp_path) == []
