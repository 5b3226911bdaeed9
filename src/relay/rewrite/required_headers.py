"""Missing Date and Message-ID added, as a submission server may (RFC 6409 §8; RFC-5322-REQUIRED).

A field that is present is never touched, even when its value is odd: the fix adds what is
missing and nothing else (a duplicate or a missing From is a refusal, not a fix).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

from relay.rewrite import Change, Rewrite, raw

__all__ = ["RULE_ID", "fix_required_headers", "new_message_id"]

RULE_ID = "RFC-5322-REQUIRED"
_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def new_message_id(domain: str) -> str:
    """`<random@domain>`: 128 random bits, so unique without coordination between nodes."""
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    return f"<{secrets.token_hex(16)}@{domain.lower()}>"


def fix_required_headers(
    message: bytes,
    *,
    domain: str,
    now: datetime,
    message_id: str | None = None,
    rule_id: str = RULE_ID,
) -> Rewrite:
    """Add `Date:` (RFC 5322 date-time in UTC, from `now`) and `Message-ID:` (`message_id`, else
    a new one under `domain`, the sender's From domain) at the top of the header section (after
    an mbox `From ` line) when there is no field of that name."""
    header, rest = raw.split(message)
    items = raw.fields(header)
    present = {item.key for item in items}
    added: list[raw.Field] = []
    changes: list[Change] = []
    if "date" not in present:
        date = format_datetime(now.astimezone(UTC))
        added.append(raw.make_field("Date", date))
        changes.append(Change(rule_id, "Date", None, date))
    if "message-id" not in present:
        value = message_id or new_message_id(domain)
        added.append(raw.make_field("Message-ID", value))
        changes.append(Change(rule_id, "Message-ID", None, value))
    if not added:
        return message, []
    if not header and not rest.startswith(raw.CRLF):
        rest = raw.CRLF + rest  # a message of body only: keep the empty line after the header
    top = next((n for n, item in enumerate(items) if item.name), len(items))  # after "From "
    return raw.join(items[:top]) + raw.join(added) + raw.join(items[top:]) + rest, changes
