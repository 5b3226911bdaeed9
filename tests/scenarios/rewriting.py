"""For the rewrite-stage stories: a relay with a public unsubscribe endpoint (and, unless told
otherwise, the shop's DKIM key), a message that lacks what the rewrite stage adds, and checks of a
delivered copy (signature verified by OpenDKIM and mailauth on the bytes the sink received)."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.policy.builders import message
from tests.scenarios.compliance import ShopDomain, policy_config
from tests.signing.conftest import Keygen
from tests.signing.verifiers import mailauth, opendkim, results, write_key_records
from tests.support.sink import Sink

UNSUBSCRIBE_BASE = "https://unsubscribe.relay.test"
MAILTO_DOMAIN = "relay.test"
ONE_CLICK_URI = re.compile(re.escape(UNSUBSCRIBE_BASE) + r"/u/([A-Za-z0-9_.-]+)")
BARE_TEXT = "Our summer sale starts today.\n"
BARE_HTML = "<html><body><p>Our summer sale starts today.</p></body></html>\n"


def rewriting_config(sink: Sink, shop: ShopDomain | None, **options: Any) -> dict[str, Any]:
    """policy_config (same `options`) with the rewrite stage's unsubscribe endpoints."""
    config = policy_config(sink, shop, **options)
    config["rewrite"] = {
        "unsubscribe_base_url": UNSUBSCRIBE_BASE,
        "unsubscribe_mailto_domain": MAILTO_DOMAIN,
    }
    return config


def without_unsubscribe(headers: dict[str, str | None] | None = None) -> bytes:
    """A commercial message without List-Unsubscribe and without the identity footer."""
    base: dict[str, str | None] = {"List-Unsubscribe": None, "List-Unsubscribe-Post": None}
    return message({**base, **(headers or {})}, text=BARE_TEXT, html=BARE_HTML)


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def assert_verifies(data: bytes, key: Keygen, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    received = directory / "delivered.eml"
    received.write_bytes(data)
    keys_txt, dns_json = write_key_records(directory / "dns", {key.record_name: key.record_value})
    assert results(opendkim(received, keys_txt)) == ["pass"]
    assert results(mailauth(received, dns_json)) == ["pass"]


def one_click_token(delivered: EmailMessage) -> str:
    """The token of relay's one-click URI, after checking both List-Unsubscribe headers."""
    value = " ".join(str(delivered["List-Unsubscribe"]).split())
    match = ONE_CLICK_URI.search(value)
    assert match, value
    token = match.group(1)
    assert value == (
        f"<{UNSUBSCRIBE_BASE}/u/{token}>,"
        f" <mailto:unsubscribe@{MAILTO_DOMAIN}?subject=unsubscribe%20{token}>"
    )
    assert delivered.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    return token


def body_text(delivered: EmailMessage) -> str:
    return "\n".join(
        part.get_content()
        for part in delivered.walk()
        if part.get_content_type() in ("text/plain", "text/html")
    )
