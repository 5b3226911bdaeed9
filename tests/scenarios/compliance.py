"""A relay running the shipped policies, with its stores filled through the real CLI imports,
delivering everything to one sink; and readers for what it recorded in the audit log."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
from typing import Any

from relay.policy.files import policy_paths
from tests.policy.builders import CONTACT, LEGAL_NAME, POSTAL_ADDRESS
from tests.support.relay_process import RelayProcess
from tests.support.sink import Sink

SENDER_ADDRESS = "news@shop.example"
US_RECIPIENT = "ann@example.us"
EU_RECIPIENT = "eva@example.de"
PRC_RECIPIENT = "li@example.cn"


def policy_config(sink: Sink) -> dict[str, Any]:
    return {
        "policy": {"files": [str(path) for path in policy_paths(None)]},
        "delivery": {"routes": {"*": f"[127.0.0.1]:{sink.port}"}},
    }


def relay_cli(relay: RelayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args, "--config", str(relay.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def import_rows(relay: RelayProcess, kind: str, rows: list[dict[str, Any]]) -> None:
    """`relay <kind> import` a JSON Lines file of `rows`, as an operator would."""
    path = relay.directory / f"{kind}-{len(list(relay.directory.glob(kind + '-*')))}.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    result = relay_cli(relay, kind, "import", str(path))
    assert result.returncode == 0, result.stderr


def add_shop_sender(relay: RelayProcess, **fields: Any) -> None:
    """The shop's sender profile; `fields` adds to or replaces columns of its import row."""
    import_rows(
        relay,
        "senders",
        [
            {
                "sender_id": "shop",
                "legal_name": LEGAL_NAME,
                "postal_address": POSTAL_ADDRESS,
                "contact": CONTACT,
                "verified_domains": ["shop.example"],
                "default_jurisdiction": "US",
                "message_class": "commercial",
                **fields,
            }
        ],
    )


def add_consent(relay: RelayProcess, address: str, jurisdictions: str, record_id: str) -> None:
    import_rows(
        relay,
        "consent",
        [
            {
                "record_id": record_id,
                "address": address,
                "sender_id": "shop",
                "scope": ["*"],
                "basis": "confirmed_optin",
                "jurisdictions": jurisdictions,
                "obtained_at": "2025-01-15T10:00:00+00:00",
                "source": "signup-form-7 203.0.113.9",
                "evidence_ref": f"evidence/{record_id}.json",
                "notice_version": "privacy-2025-01",
                "affirmative_action": True,
                "bundled": False,
            }
        ],
    )


def audit_records(relay: RelayProcess) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted((relay.directory / "var" / "audit").glob("audit-*.jsonl")):
        records.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return records


def records_for(relay: RelayProcess, recipient: str) -> list[dict[str, Any]]:
    return [record for record in audit_records(relay) if record.get("recipient") == recipient]


def rcpt(client: smtplib.SMTP, address: str) -> tuple[int, str]:
    code, text = client.rcpt(address)
    return code, text.decode("utf-8", "replace")


def reply_status(text: str) -> str:
    return text.split()[0]


def submit(
    relay: RelayProcess, recipients: list[str], content: bytes
) -> tuple[dict[str, tuple[int, str]], tuple[int, str] | None]:
    """One transaction from the shop: each recipient's RCPT reply and the DATA reply (None when
    no recipient was accepted)."""
    with relay.smtp() as client:
        client.ehlo("mailer.shop.example")
        client.mail(SENDER_ADDRESS, options=["SMTPUTF8"])
        replies = {address: rcpt(client, address) for address in recipients}
        if not any(code == 250 for code, _ in replies.values()):
            return replies, None
        code, text = client.data(content)
        return replies, (code, text.decode("utf-8", "replace"))
