"""The RFC 8463 vectors of ../shared/corpus/dkim verify with OpenDKIM and mailauth as its
manifest says (run in the corpus directory with its keys.txt and dns.json, as its README does),
and relay signing the unsigned RFC 6376/8463 example with the RFC 8463 keys passes both."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from relay.signing import KeyRing, Signer, SigningKey
from tests.signing.verifiers import mailauth, opendkim, results
from tests.support.paths import CORPUS

DKIM_CORPUS = CORPUS / "dkim"
MANIFEST = {row["file"]: row for row in csv.DictReader((DKIM_CORPUS / "manifest.csv").open())}
RFC8463 = sorted(name for name in MANIFEST if name.startswith("rfc8463/"))


def words(observed: str) -> list[str]:
    """A manifest verdict column: `pass pass`, `none[message not signed]` -> the result words."""
    return re.findall(r"(\w+)(?:\[[^\]]*\])?", observed)


@pytest.mark.parametrize("name", RFC8463)
def test_rfc8463_vectors_as_manifest_says(name):
    row = MANIFEST[name]
    by_opendkim = opendkim(DKIM_CORPUS / name, DKIM_CORPUS / "keys.txt")
    by_mailauth = mailauth(DKIM_CORPUS / name, DKIM_CORPUS / "dns.json")

    if words(row["opendkim_2.11.0"]) == ["none"]:
        assert by_opendkim == []
    else:
        assert results(by_opendkim) == words(row["opendkim_2.11.0"])
    assert results(by_mailauth) == words(row["mailauth_4.13.3"])


def corpus_key(file: str, selector: str, algorithm) -> SigningKey:
    """The RFC 8463 keys, loaded straight into a SigningKey: relay's load_keys would refuse the
    RSA-1024 key (and the world-readable corpus files), rightly; here the RFC's key is the point."""
    private_key = serialization.load_pem_private_key(
        (DKIM_CORPUS / "keys" / file).read_bytes(), None
    )
    return SigningKey("football.example.com", selector, algorithm, private_key)


def test_relay_signs_the_rfc_example_with_the_rfc8463_keys(tmp_path):
    keyring = KeyRing(
        [
            corpus_key("test._domainkey.football.example.com.rsa.pem", "test", "rsa-sha256"),
            corpus_key(
                "brisbane._domainkey.football.example.com.ed25519.pem", "brisbane", "ed25519-sha256"
            ),
        ]
    )
    assert keyring.for_domain("football.example.com")[0].bits == 1024
    unsigned = (DKIM_CORPUS / "rfc8463" / "rfc6376-unsigned.eml").read_bytes()

    result = Signer(keyring).sign(unsigned)

    assert [tuple(s) for s in result.signed_by] == [
        ("football.example.com", "test", "rsa-sha256"),
        ("football.example.com", "brisbane", "ed25519-sha256"),
    ]
    assert b"\r\n" not in result.content  # the corpus file has LF line ends; so do relay's fields
    signed = tmp_path / "signed.eml"
    signed.write_bytes(result.content)
    keys_txt = shutil.copy(DKIM_CORPUS / "keys.txt", tmp_path / "keys.txt")
    dns_json = shutil.copy(DKIM_CORPUS / "dns.json", tmp_path / "dns.json")
    assert results(opendkim(signed, Path(keys_txt))) == ["pass", "pass"]
    assert results(mailauth(signed, Path(dns_json))) == ["pass", "pass"]
