"""A relay running the shipped policies, with its stores filled through the real CLI imports,
delivering everything to one sink; and readers for what it recorded in the audit log.

The shop's domain, shop.example, is ready to send through relay in the test DNS (the `shop`
fixture): SPF authorises 127.0.0.1 (relay's egress address here), a DMARC record, and the
records of two keys relay holds for it, RSA `s2026` and Ed25519 `e2026`."""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from relay.policy.files import policy_paths
from tests.policy.builders import CONTACT, LEGAL_NAME, POSTAL_ADDRESS
from tests.signing.conftest import Keygen
from tests.support.relay_process import RelayProcess
from tests.support.sink import Sink

SENDER_ADDRESS = "news@shop.example"
US_RECIPIENT = "ann@example.us"
EU_RECIPIENT = "eva@example.de"
PRC_RECIPIENT = "li@example.cn"


SHOP_DOMAIN = "shop.example"
EGRESS = "127.0.0.1"


@dataclass(frozen=True)
class ShopDomain:
    """The keys relay holds for shop.example, whose records the test DNS publishes."""

    rsa: Keygen
    ed25519: Keygen

    def keys(self, *, ed25519: bool = False) -> list[dict[str, str]]:
        rsa = self.rsa.key_entry()
        return [rsa, self.ed25519.key_entry("ed25519-sha256")] if ed25519 else [rsa]


def policy_config(
    sink: Sink,
    shop: ShopDomain | None,
    *,
    ed25519: bool = False,
    policy_files: list[Path] | None = None,
) -> dict[str, Any]:
    """The shipped policies (or `policy_files`), delivery to the sink, and the shop's keys
    (RSA, and Ed25519 too with `ed25519`); `shop` None: relay holds no key for shop.example."""
    return {
        "policy": {"files": [str(path) for path in policy_files or policy_paths(None)]},
        "delivery": {"routes": {"*": f"[127.0.0.1]:{sink.port}"}, "egress_addresses": [EGRESS]},
        "dkim": {"keys": shop.keys(ed25519=ed25519) if shop else []},
    }


def policies_with(directory: Path, actions: Mapping[str, str]) -> list[Path]:
    """Copies of the shipped policy files in which the rules named in `actions` have the
    given action instead, as an operator who edits them would have."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for shipped in policy_paths(None):
        data = tomllib.loads(shipped.read_text(encoding="utf-8"))
        for rule_id, action in actions.items():
            if rule_id in data["rules"]:
                data["rules"][rule_id]["action"] = action
        path = directory / shipped.name
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
        paths.append(path)
    return paths


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


def add_consent(
    relay: RelayProcess, address: str, jurisdictions: str, record_id: str, **fields: Any
) -> None:
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
                **fields,
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
    relay: RelayProcess, recipients: list[str], content: bytes, sender: str = SENDER_ADDRESS
) -> tuple[dict[str, tuple[int, str]], tuple[int, str] | None]:
    """One transaction from the shop: each recipient's RCPT reply and the DATA reply (None when
    no recipient was accepted)."""
    with relay.smtp() as client:
        client.ehlo("mailer.shop.example")
        client.mail(sender, options=["SMTPUTF8"])
        replies = {address: rcpt(client, address) for address in recipients}
        if not any(code == 250 for code, _ in replies.values()):
            return replies, None
        code, text = client.data(content)
        return replies, (code, text.decode("utf-8", "replace"))
