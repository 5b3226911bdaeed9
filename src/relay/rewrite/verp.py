"""VERP return paths (variable envelope return path): each recipient's copy is sent with a MAIL
FROM under the sender's bounce domain that names the queue entry and the recipient, so a bounce
says which message and which recipient failed even when its content is useless.

    bounce+<queue id>=<recipient local part>=<recipient domain>@<bounce domain>

The recipient's local part and domain are encoded so the result is a dot-atom local part
(RFC 5322 §3.4.1), readable for ordinary addresses: octets other than letters, digits and
`-_.+!#$&'*/?^`{|}~` (so `=`, `%`, quotes, spaces, `@`, UTF-8) become `%XX`, and so does a dot
that would follow another dot. When the result would exceed the 64 octets of a local part
(RFC 5321 §4.5.3.1.1), the recipient is named by a short digest instead:

    bounce+<queue id>=<16 base32 characters>@<bounce domain>

`parse_verp` reads both forms; for the short one the feedback stage matches the digest against
the recipients of the queue entry (`verp_tag`). The digest names, it does not authenticate: like
the long form, anyone who knows the queue id and the recipient can make it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from relay.rewrite import Change

__all__ = ["RULE_ID", "VerpAddress", "parse_verp", "verp_address", "verp_return_path", "verp_tag"]

RULE_ID = "RELAY-VERP"  # not a compliance rule: the relay's own return-path rewrite
PREFIX = "bounce"
MAX_LOCAL_PART = 64
_SAFE = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+!#$&'*/?^`{|}~"
)
_QUEUE_ID = re.compile(r"^[A-Za-z0-9]+$")
_TAG = re.compile(r"^[a-z2-7]{16}$")
# RFC 5322 §3.4.1 dot-atom, with RFC 6532's UTF-8 characters: a local part needing no quotes.
_DOT_ATOM = re.compile(r"^[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*$")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class VerpAddress:
    """What a VERP address names: the queue entry and either the recipient or its tag."""

    queue_id: str
    recipient: str | None  # the long form
    tag: str | None  # the short form: compare with verp_tag(queue_id, candidate)


def _encode(text: str) -> str:
    out: list[str] = []
    previous = 0
    for octet in text.encode("utf-8"):
        literal = octet in _SAFE and not (octet == previous == ord("."))
        out.append(chr(octet) if literal else f"%{octet:02X}")
        previous = octet if literal else 0
    return "".join(out)


def _decode(text: str) -> str | None:
    if "%" in _ESCAPE.sub("", text):
        return None
    try:
        return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text).encode("latin-1").decode()
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def verp_tag(queue_id: str, recipient: str) -> str:
    """The short name of a recipient in the short form: 80 bits of SHA-256 of the queue id and
    the lower-cased recipient, base32 lower-case."""
    digest = hashlib.sha256(f"{queue_id}\0{recipient.strip().lower()}".encode()).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()


def verp_address(bounce_domain: str, queue_id: str, recipient: str) -> str:
    """The VERP return path of one recipient of queue entry `queue_id`."""
    if not _QUEUE_ID.match(queue_id):
        raise ValueError(f"a queue id is letters and digits, not {queue_id!r}")
    local, at, domain = recipient.strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an address: {recipient!r}")
    if local.startswith('"') and local.endswith('"') and len(local) > 1:
        local = re.sub(r"\\(.)", r"\1", local[1:-1])  # the quoted-string's content
    domain = domain.rstrip(".").lower()
    long_form = f"{PREFIX}+{queue_id}={_encode(local)}={_encode(domain)}"
    if len(long_form) <= MAX_LOCAL_PART:
        return f"{long_form}@{bounce_domain}"
    short_form = f"{PREFIX}+{queue_id}={verp_tag(queue_id, recipient)}"
    if len(short_form) > MAX_LOCAL_PART:
        raise ValueError(f"queue id {queue_id!r} is too long for a VERP local part")
    return f"{short_form}@{bounce_domain}"


def parse_verp(address: str, prefix: str = PREFIX) -> VerpAddress | None:
    """What a VERP return path (a bounce's recipient) names; None if it is not one."""
    local, at, _ = address.strip().strip("<>").rpartition("@")
    head, plus, rest = local.partition("+")
    if not at or not plus or head.lower() != prefix.lower():
        return None
    pieces = rest.split("=")
    if not _QUEUE_ID.match(pieces[0]):
        return None
    if len(pieces) == 2 and _TAG.match(pieces[1].lower()):
        return VerpAddress(pieces[0], None, pieces[1].lower())
    if len(pieces) != 3:
        return None
    recipient_local, recipient_domain = _decode(pieces[1]), _decode(pieces[2])
    if not recipient_local or not recipient_domain:
        return None
    if not _DOT_ATOM.match(recipient_local):
        escaped = recipient_local.replace("\\", "\\\\").replace('"', '\\"')
        recipient_local = f'"{escaped}"'
    return VerpAddress(pieces[0], f"{recipient_local}@{recipient_domain}", None)


def verp_return_path(
    mail_from: str, bounce_domain: str, queue_id: str, recipient: str
) -> tuple[str, Change]:
    """The new MAIL FROM of one recipient's copy, and the change to record."""
    new = verp_address(bounce_domain, queue_id, recipient)
    return new, Change(RULE_ID, "MAIL FROM", mail_from or None, new)
