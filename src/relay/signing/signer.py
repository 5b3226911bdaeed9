"""DKIM signing (RFC 6376, RFC 8301, RFC 8463), the last step before a message is spooled.

`Signer(keyring).sign(message)` adds one DKIM-Signature per active key of the From domain:
rsa-sha256 and, when configured, ed25519-sha256 under its own selector (RFC-DKIM-ALG). Both are
relaxed/relaxed and cover the same header fields (RFC-DKIM-HEADERS, RFC-LUP-DKIM):

- every present field of SIGNED_FIELDS, each instance once;
- From, Subject, List-Unsubscribe and List-Unsubscribe-Post once more than present, so even when
  absent: a copy added after signing (a second From, a List-Unsubscribe on a message that had
  none) breaks the signature (RFC 6376 §5.4.2, §8.15);
- To, Date and Reply-To once more than present when present.

The RSA signature is placed above the Ed25519 one. Verifiers evaluate every signature, but some
stop after the first or after a few, and Ed25519 is not supported everywhere (Debian's
Mail::DKIM, for one); the signature every verifier can check comes first.

Work split with dkimpy: dkimpy parses the header section, canonicalises and selects the header
fields, hashes them, and writes and folds the DKIM-Signature field (`DomainSigner.gen_header`).
relay computes the body hash once per message for both signatures (relay.signing.canonical: same
bytes as dkimpy's, without its per-space regular expression) and does the private-key operation
with `cryptography` (OpenSSL), where dkimpy would run RSA in pure Python (~190 signs/s).
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import dkim
from dkim.canonicalization import CanonicalizationPolicy

from relay.errors import SigningError
from relay.signing.canonical import header_section, relaxed_body, split_message
from relay.signing.keys import Algorithm, KeyRing, SigningKey, normalise_domain

__all__ = [
    "ALWAYS_SIGNED",
    "OVERSIGNED_WHEN_PRESENT",
    "SIGNED_FIELDS",
    "SignResult",
    "SignedBy",
    "Signer",
    "header_list",
]

# RFC 6376 §5.4.1 recommended fields, Message-ID and the MIME fields, RFC 9477 §3.1.4 CFBL fields,
# Feedback-ID; in this order in h=.
SIGNED_FIELDS: tuple[str, ...] = (
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "cfbl-address",
    "cfbl-feedback-id",
    "feedback-id",
)
ALWAYS_SIGNED = frozenset({"from", "subject", "list-unsubscribe", "list-unsubscribe-post"})
OVERSIGNED_WHEN_PRESENT = frozenset({"to", "date", "reply-to"})

_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_SIGNED_NAMES = frozenset(name.encode("ascii") for name in SIGNED_FIELDS)
_H_RULES = tuple(
    (name.encode("ascii"), name in ALWAYS_SIGNED, name in OVERSIGNED_WHEN_PRESENT)
    for name in SIGNED_FIELDS
)
_HEADER_NAME = b"DKIM-Signature"


class SignedBy(NamedTuple):
    domain: str  # d=
    selector: str  # s=
    algorithm: Algorithm  # a=


@dataclass(frozen=True)
class SignResult:
    """The message with its DKIM-Signature fields in front, and who signed it. When nobody
    did, content is the message unchanged and unsigned_reason says why."""

    content: bytes
    signed_by: tuple[SignedBy, ...]
    unsigned_reason: str | None = None

    @property
    def signed(self) -> bool:
        return bool(self.signed_by)


class Signer:
    """Signs with the active keys of a KeyRing; holds no other state, safe to share."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def has_key_for(self, message: bytes) -> bool:
        """Whether `sign` would sign `message`: it has one usable From domain with a key (the
        aligned key a rewrite needs, COMPLIANCE §11 point 10)."""
        try:
            domain, _ = _author_domain(_parse_header_section(header_section(message)))
        except (SigningError, ValueError, UnicodeError):
            return False
        return domain is not None and bool(self.keyring.for_domain(domain))

    def sign(self, message: bytes, *, now: float | None = None) -> SignResult:
        """Sign for the From domain, with t=NOW (default: the clock). Raises SigningError when
        the header section cannot be parsed or dkimpy refuses to write the signature; a message
        without a usable From, or whose From domain has no key, comes back unsigned with the
        reason."""
        header_section, body, linesep = split_message(message)
        fields = _parse_header_section(header_section)
        domain, reason = _author_domain(fields)
        if domain is None:
            return SignResult(message, (), reason)
        keys = self.keyring.for_domain(domain)
        if not keys:
            return SignResult(message, (), f"no DKIM key for {domain}")
        include = header_list(name.lower() for name, _ in fields)
        signed_fields = [field for field in fields if field[0].lower() in _SIGNED_NAMES]
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        timestamp = str(int(time.time() if now is None else now)).encode("ascii")
        signatures = [
            _signature_field(key, signed_fields, include, body_hash, timestamp, linesep)
            for key in keys
        ]
        signed_by = tuple(SignedBy(key.domain, key.selector, key.algorithm) for key in keys)
        return SignResult(b"".join(signatures) + message, signed_by)


def header_list(present: Iterable[bytes]) -> tuple[bytes, ...]:
    """The h= names for a message whose header field names (lower case) are PRESENT."""
    counts = dict.fromkeys(_SIGNED_NAMES, 0)
    for name in present:
        if name in counts:
            counts[name] += 1
    include: list[bytes] = []
    for name, always, when_present in _H_RULES:
        count = counts[name]
        if always or (count and when_present):
            count += 1
        include.extend([name] * count)
    return tuple(include)


def _parse_header_section(header_section: bytes) -> list[list[bytes]]:
    """dkimpy's [name, value] pairs, values with their line endings (CRLF)."""
    try:
        headers, _ = dkim.rfc822_parse(header_section)
    except dkim.MessageFormatError as exc:
        raise SigningError(f"cannot sign: {exc}") from None
    except IndexError:  # dkimpy: a continuation line before the first field
        raise SigningError("cannot sign: the header section starts with a folded line") from None
    return list(headers)


def _author_domain(fields: list[list[bytes]]) -> tuple[str | None, str | None]:
    """(domain of the From mailboxes, None) or (None, why there is none to sign for)."""
    values = [value for name, value in fields if name.lower() == b"from"]
    if not values:
        return None, "no From header field"
    if len(values) > 1:
        return None, f"{len(values)} From header fields"
    value = values[0]
    return _remembered_from_domain(value) if len(value) <= 1024 else _from_domain(value)


def _from_domain(value: bytes) -> tuple[str | None, str | None]:
    text = value.decode("utf-8", "surrogateescape")
    addresses = [address for _, address in email.utils.getaddresses([text]) if address]
    if not addresses:
        return None, f"no address in From: {text.strip()!r}"
    domains: set[str] = set()
    for address in addresses:
        local, at, domain = address.rpartition("@")
        if not (local and at and domain):
            return None, f"From address without a domain: {address!r}"
        try:
            domains.add(normalise_domain(domain))
        except UnicodeError:
            return None, f"From domain is not a valid domain name: {domain!r}"
    if len(domains) > 1:
        return None, f"From has mailboxes in several domains: {', '.join(sorted(domains))}"
    return domains.pop(), None


# A sender's mail has the same From, and the email package's address parser is slow pure Python
# (a tenth of a millisecond); the length bound keeps the memory bounded.
_remembered_from_domain = functools.lru_cache(maxsize=1024)(_from_domain)


# -- the seam between dkimpy and cryptography -----------------------------------------------------


class _Signature(NamedTuple):
    signature: bytes


class _KeyOperation:
    """What dkimpy's gen_header calls on its Ed25519 branch: `pk.sign(digest).signature`."""

    __slots__ = ("_key",)

    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def sign(self, digest: bytes) -> _Signature:
        return _Signature(self._key.sign_digest(digest))


def _signature_field(
    key: SigningKey,
    fields: list[list[bytes]],
    include: tuple[bytes, ...],
    body_hash: bytes,
    timestamp: bytes,
    linesep: bytes,
) -> bytes:
    """The DKIM-Signature field, written by dkimpy, signed by cryptography.

    Uses dkimpy's `DomainSigner.gen_header` (public name, not documented API; dkimpy 1.1.8):
    it canonicalises and hashes the fields named in h= and the DKIM-Signature field with an
    empty b=, gets the signature, and folds the field. Its key operation is chosen by
    `signature_algorithm`: pure-Python RSA for rsa-*, `pk.sign(digest).signature` for
    ed25519-sha256. Setting that attribute to ed25519-sha256 routes both algorithms through
    `_KeyOperation`, i.e. SigningKey.sign_digest; the a= tag comes from the field list, and
    the digest is SHA-256 either way. tests/signing/test_dkimpy_seam.py checks that this gives
    the same bytes as dkimpy's own RSA code and fails if a dkimpy upgrade changes the seam.
    """
    tags = [
        (b"v", b"1"),
        (b"a", key.algorithm.encode("ascii")),
        (b"c", b"relaxed/relaxed"),
        (b"d", key.domain.encode("ascii")),
        (b"s", key.selector.encode("ascii")),
        (b"t", timestamp),
        (b"h", b" : ".join(include)),
        (b"bh", body_hash),
        (b"b", b"0" * 60),  # placeholder, as dkimpy's sign(): puts b= on a line of its own
    ]
    writer = dkim.DKIM(linesep=linesep)
    writer.headers = fields
    writer.hasher = hashlib.sha256
    writer.signature_algorithm = b"ed25519-sha256"
    try:
        value = writer.gen_header(tags, include, _RELAXED, _HEADER_NAME, _KeyOperation(key))
    except dkim.DKIMException as exc:
        raise SigningError(f"cannot sign as {key.record_name}: {exc}") from None
    return _HEADER_NAME + b": " + bytes(value)
