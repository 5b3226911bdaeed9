"""Provider notifications that are JSON rather than a DSN (Amazon SES, alone or wrapped in an
SNS envelope), turned into the same RFC 3464 field groups the rest of the parser reads."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["from_json"]


def from_json(text: str) -> tuple[list[dict[str, str]], list[str]] | None:
    """(RFC 3464-style groups for bounced or delivered recipients, complained-about
    recipients), or None when `text` holds no such notification."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        # strict=False: mail systems fold long lines, leaving raw newlines inside strings.
        data = json.loads(text[start : end + 1], strict=False)
        if isinstance(data, dict) and isinstance(data.get("Message"), str):
            data = json.loads(data["Message"], strict=False)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "").lower()
    if kind == "bounce":
        return [_group(item) for item in _items(data, "bounce", "bouncedRecipients")], []
    if kind == "delivery":
        delivery = data.get("delivery") or {}
        response = str(delivery.get("smtpResponse", ""))
        return [
            {
                "final-recipient": f"rfc822; {address}",
                "action": "delivered",
                "diagnostic-code": f"smtp; {response}",
            }
            for address in delivery.get("recipients", [])
            if isinstance(address, str)
        ], []
    if kind == "complaint":
        return [], [
            str(item.get("emailAddress", ""))
            for item in _items(data, "complaint", "complainedRecipients")
        ]
    return None


def _items(data: dict[str, Any], section: str, key: str) -> list[dict[str, Any]]:
    items = (data.get(section) or {}).get(key, [])
    return [item for item in items if isinstance(item, dict)]


def _group(item: dict[str, Any]) -> dict[str, str]:
    return {
        "final-recipient": f"rfc822; {item.get('emailAddress', '')}",
        "action": str(item.get("action", "failed")),
        "status": str(item.get("status", "")),
        "diagnostic-code": str(item.get("diagnosticCode", "")),
    }
