"""Relay-hosted unsubscribe: HMAC tokens, the one-click and mailto URIs that carry them, and the
fix that writes `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 2369, RFC 8058).

Token (RFC-LUP-OPAQUE: identifies recipient, sender and list; hard to forge)::

    token   = base64url(payload) "." base64url(mac)          no padding, [A-Za-z0-9_-.]
    payload = version (1 octet, 1)
              issued day (3 octets, days since 1970-01-01, big-endian)
              len, recipient address hash (the stores' keyed hash, raw octets)
              len, sender id (UTF-8)
              len, list id (UTF-8; length 0 = no list)
    mac     = HMAC-SHA256(key, "relay unsubscribe token v1" NUL payload), first 16 octets

The payload is readable but says nothing about the recipient without the address-hash key; the
MAC makes it unforgeable. Tokens do not expire unless the reader asks (COMPLIANCE §9: relay
tokens stay valid at least 60 days, no expiry recommended); keys can be rotated by keeping the
old ones as `previous_keys`.

URIs (DESIGN §4: public one-click under `/u/<token>`)::

    https://<host>/u/<token>
    mailto:unsubscribe@<mailto domain>?subject=unsubscribe%20<token>

The token travels in the mailto Subject, not in the local part: with a 32-octet address hash a
token is about 95 characters, and a local part is limited to 64 octets (RFC 5321 §4.5.3.1.1;
relay's own ingest refuses longer ones). `find_token` gets it back from a request's Subject or
address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from relay.policy.inspect import ONE_CLICK
from relay.rewrite import Change, Rewrite, raw

__all__ = [
    "MAILBOX",
    "TokenClaims",
    "UnsubscribeLinks",
    "UnsubscribeTokens",
    "find_token",
    "fix_unsubscribe",
    "unsubscribe_links",
]

MAILBOX = "unsubscribe"  # local part of the relay-hosted mailto: address (relay.feedback)
MIN_KEY_SIZE = 32
VERSION = 1
MAC_SIZE = 16  # 128 bits
MAX_TOKEN = 1024  # characters read at most; longer input is no token
_LABEL = b"relay unsubscribe token v1\x00"
_EPOCH = date(1970, 1, 1)
_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(?::\d{1,5})?$")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a valid token names."""

    sender_id: str
    list_id: str | None
    address_hash: str  # lower-case hex, as the stores key records
    issued: date


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not _PART.match(text) or len(text) % 4 == 1:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None  # one spelling per token


class UnsubscribeTokens:
    """Issues and reads unsubscribe tokens under a secret key (at least 32 octets; use another
    key than the address hash's)."""

    __slots__ = ("_keys",)

    def __init__(self, key: bytes, previous_keys: Sequence[bytes] = ()) -> None:
        for candidate in (key, *previous_keys):
            if len(candidate) < MIN_KEY_SIZE:
                raise ValueError(f"an unsubscribe token key must be at least {MIN_KEY_SIZE} bytes")
        self._keys = (key, *previous_keys)

    def __repr__(self) -> str:
        return "UnsubscribeTokens(<key>)"

    @staticmethod
    def _mac(key: bytes, payload: bytes) -> bytes:
        return hmac.new(key, _LABEL + payload, hashlib.sha256).digest()[:MAC_SIZE]

    def issue(self, *, sender_id: str, list_id: str | None, address_hash: str, issued: date) -> str:
        """A token naming the recipient (by its keyed address hash), the sender and the list."""
        digest = bytes.fromhex(address_hash)
        sender = sender_id.encode("utf-8")
        listed = (list_id or "").encode("utf-8")
        day = (issued - _EPOCH).days
        for name, value in (("address hash", digest), ("sender id", sender), ("list id", listed)):
            if len(value) > 255:
                raise ValueError(f"the {name} is longer than 255 octets")
        if not digest or not sender:
            raise ValueError("a token needs an address hash and a sender id")
        if not 0 <= day < 1 << 24:
            raise ValueError(f"issue date {issued} out of range")
        payload = b"".join(
            (
                bytes([VERSION]),
                day.to_bytes(3, "big"),
                bytes([len(digest)]),
                digest,
                bytes([len(sender)]),
                sender,
                bytes([len(listed)]),
                listed,
            )
        )
        return f"{_b64(payload)}.{_b64(self._mac(self._keys[0], payload))}"

    def read(
        self, token: str, *, today: date | None = None, max_age: timedelta | None = None
    ) -> TokenClaims | None:
        """The claims of a token made with one of the keys; None for anything else (altered,
        another key, malformed, or older than `max_age` on `today` when both are given)."""
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            return None
        encoded_payload, encoded_mac = token.split(".")
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
        if payload is None or mac is None or len(mac) != MAC_SIZE:
            return None
        if not any(hmac.compare_digest(self._mac(key, payload), mac) for key in self._keys):
            return None
        claims = _claims(payload)
        if claims is None:
            return None
        if max_age is not None and today is not None and today - claims.issued > max_age:
            return None
        return claims


def _claims(payload: bytes) -> TokenClaims | None:
    if len(payload) < 4 or payload[0] != VERSION:
        return None
    issued = _EPOCH + timedelta(days=int.from_bytes(payload[1:4], "big"))
    values: list[bytes] = []
    offset = 4
    for _ in range(3):
        if offset >= len(payload):
            return None
        size = payload[offset]
        values.append(payload[offset + 1 : offset + 1 + size])
        offset += 1 + size
        if len(values[-1]) != size:
            return None
    if offset != len(payload) or not values[0] or not values[1]:
        return None
    try:
        sender_id = values[1].decode("utf-8")
        list_id = values[2].decode("utf-8") or None
    except UnicodeDecodeError:
        return None
    return TokenClaims(sender_id, list_id, values[0].hex(), issued)


def find_token(text: str) -> str | None:
    """The first thing shaped like a token in `text` (a mailto request's Subject or address);
    whether it is valid is for `UnsubscribeTokens.read` to say."""
    match = _TOKEN.search(text)
    return match.group(0) if match else None


@dataclass(frozen=True, slots=True)
class UnsubscribeLinks:
    """The relay-hosted unsubscribe URIs of one recipient of one message."""

    https: str  # one-click (RFC 8058 POST) and confirmation page (GET)
    mailto: str  # refusal by e-mail (PRC-OPTOUT-CONTACT)

    @property
    def header_value(self) -> str:
        """The List-Unsubscribe value: the one-click URI first (RFC 2369 §2: preference order)."""
        return f"<{self.https}>, <{self.mailto}>"


def unsubscribe_links(
    token: str, host: str, mailto_domain: str, mailbox: str = MAILBOX
) -> UnsubscribeLinks:
    """The URIs for `token` on the relay's public HTTPS `host` and its mailto domain."""
    if not _HOST.match(host) or not _HOST.match(mailto_domain) or ":" in mailto_domain:
        raise ValueError(f"not a host name: {host!r} / {mailto_domain!r}")
    if not re.fullmatch(r"[A-Za-z0-9._+-]+", mailbox):
        raise ValueError(f"not a plain mailbox name: {mailbox!r}")
    return UnsubscribeLinks(
        https=f"https://{host}/u/{token}",
        mailto=f"mailto:{mailbox}@{mailto_domain}?subject=unsubscribe%20{token}",
    )


_NAMES = ("list-unsubscribe", "list-unsubscribe-post")


def fix_unsubscribe(message: bytes, links: UnsubscribeLinks, *, rule_id: str) -> Rewrite:
    """Replace every List-Unsubscribe and List-Unsubscribe-Post field (folded lines included)
    with one `List-Unsubscribe: <https>, <mailto>` and one `List-Unsubscribe-Post:
    List-Unsubscribe=One-Click`, where the first of the old ones stood (else at the end of the
    header section). Nothing changes when the message carries exactly these already."""
    header, rest = raw.split(message)
    items = raw.fields(header)
    unsubscribes = [item.value for item in items if item.key == _NAMES[0]]
    posts = [item.value for item in items if item.key == _NAMES[1]]
    if unsubscribes == [links.header_value] and posts == [ONE_CLICK]:
        return message, []
    kept = [item for item in items if item.key not in _NAMES]
    first = next((n for n, item in enumerate(items) if item.key in _NAMES), len(items))
    position = sum(1 for item in items[:first] if item.key not in _NAMES)
    new = [
        raw.make_field("List-Unsubscribe", f"<{links.https}>,", f" <{links.mailto}>"),
        raw.make_field("List-Unsubscribe-Post", ONE_CLICK),
    ]
    kept[position:position] = new
    changes = [
        Change(rule_id, "List-Unsubscribe", "\n".join(unsubscribes) or None, links.header_value)
    ]
    if posts != [ONE_CLICK]:
        changes.append(
            Change(rule_id, "List-Unsubscribe-Post", "\n".join(posts) or None, ONE_CLICK)
        )
    return raw.join(kept) + rest, changes
