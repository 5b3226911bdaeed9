"""After real traffic, `relay audit verify` accepts the log; an edited record is caught and
named."""

from __future__ import annotations

import json

from tests.policy.builders import message
from tests.scenarios.compliance import (
    EU_RECIPIENT,
    US_RECIPIENT,
    add_shop_sender,
    audit_records,
    policy_config,
    relay_cli,
    submit,
)


def test_verify_passes_then_catches_an_edit(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    submit(relay, [EU_RECIPIENT], message())  # refused: no consent
    submit(relay, [US_RECIPIENT], message())  # accepted
    sink.wait_for(1)
    relay.stop()
    ok = relay_cli(relay, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert f"{len(audit_records(relay))} records" in ok.stdout

    (log_file,) = sorted((relay.directory / "var" / "audit").glob("audit-*.jsonl"))
    lines = log_file.read_text().splitlines()
    refused_at = next(i for i, line in enumerate(lines) if '"reject"' in line)
    record = json.loads(lines[refused_at])
    record["action"] = "accept"  # rewrite history: pretend the EU recipient was accepted
    lines[refused_at] = json.dumps(
        record, ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    log_file.write_text("\n".join(lines) + "\n")
    broken = relay_cli(relay, "audit", "verify")
    assert broken.returncode == 1
    assert f"{log_file}:{refused_at + 1}: record seq {record['seq']}:" in broken.stderr
    assert "Traceback" not in broken.stderr
