"""When the stores cannot answer, the checkpoint refuses with 451 4.3.0 and records it: never
fail open (COMPLIANCE §0). Real SQLite stores and a real audit log, closed under it."""

from __future__ import annotations

import asyncio
import json

from relay.audit.log import AuditLog
from relay.policy.checkpoint import Checkpoint, Transaction
from relay.policy.engine import PolicyEngine
from relay.policy.files import load_policies, policy_paths
from relay.stores.hashing import AddressHasher
from relay.stores.sqlite import SqliteStores
from tests.policy.builders import SENDER


def test_store_failure_answers_451_and_is_audited(tmp_path):
    async def scenario() -> tuple[str, str, str]:
        stores = SqliteStores(tmp_path / "stores.sqlite", AddressHasher(b"k" * 32), True)
        await stores.open()
        await stores.put_senders([SENDER])
        audit = AuditLog(tmp_path / "audit", node="test")
        await audit.open()
        engine = PolicyEngine(load_policies(policy_paths(None)))
        checkpoint = Checkpoint(engine, stores, audit, stores.hasher.hash, keep_addresses=True)
        opened = await checkpoint.begin("news@shop.example", None, True, "127.0.0.1")
        assert isinstance(opened, Transaction)
        accepted = await checkpoint.recipient(opened, "ann@example.us")
        await stores.close()
        refused = await checkpoint.recipient(opened, "bob@example.us")
        await audit.close()
        return str(accepted), str(refused), opened.recipients[-1].address

    accepted, refused, last = asyncio.run(scenario())
    assert accepted.startswith("250 2.1.5")
    assert refused.startswith("451 4.3.0 ")
    assert last == "ann@example.us"
    (log_file,) = (tmp_path / "audit").glob("audit-*.jsonl")
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    (record,) = [r for r in records if r.get("recipient") == "bob@example.us"]
    assert record["action"] == "refuse"
    assert record["reply"].startswith("451 4.3.0 ")
