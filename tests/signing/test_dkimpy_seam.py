"""The one place relay leans on dkimpy internals (signer._signature_field, dkimpy 1.1.8's
`DomainSigner.gen_header` with its key operation routed to `cryptography`): the field it writes
must be byte for byte what dkimpy's own pure-Python RSA code writes for the same input, and
dkimpy's verifier must accept it. A dkimpy upgrade that moves the seam fails here first."""

from __future__ import annotations

import base64
import hashlib

import dkim
import dkim.crypto
from cryptography.hazmat.primitives import serialization
from dkim.canonicalization import CanonicalizationPolicy

from relay.signing import Signer
from relay.signing.signer import _signature_field, header_list
from tests.signing.conftest import KeySet
from tests.signing.messages import html_alternative, plain_text


def test_same_bytes_as_dkimpy_pure_python_rsa(rsa_only: KeySet):
    (key,) = rsa_only.keyring.for_domain("shop.example")
    message = html_alternative()
    headers, body = dkim.rfc822_parse(message)
    relaxed = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    body_hash = base64.b64encode(hashlib.sha256(relaxed.canonicalize_body(body)).digest())
    include = header_list(name.lower() for name, _ in headers)

    ours = _signature_field(key, headers, include, body_hash, b"1741078800", b"\r\n")

    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    theirs = dkim.DKIM(message)
    theirs.hasher = hashlib.sha256  # as DKIM.sign() sets it
    tags = [
        (b"v", b"1"),
        (b"a", b"rsa-sha256"),
        (b"c", b"relaxed/relaxed"),
        (b"d", b"shop.example"),
        (b"s", key.selector.encode()),
        (b"t", b"1741078800"),
        (b"h", b" : ".join(include)),
        (b"bh", body_hash),
        (b"b", b"0" * 60),
    ]
    pure = theirs.gen_header(
        tags, include, relaxed, b"DKIM-Signature", dkim.crypto.parse_pem_private_key(pem)
    )

    assert ours == b"DKIM-Signature: " + pure


def test_dkimpy_verifies_what_relay_signs(rsa_only: KeySet):
    (record,) = rsa_only.records.values()
    signed = Signer(rsa_only.keyring).sign(plain_text()).content

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"rsa2025._domainkey.shop.example."
        return record.encode()

    assert dkim.verify(signed, dnsfunc=dns)
