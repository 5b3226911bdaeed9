"""Signatures made by relay (RSA-2048 alone, RSA-2048 + Ed25519) pass OpenDKIM and mailauth, and
stop passing when a From or Subject is added or the body is changed after signing."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.signing import Signer
from tests.signing.conftest import KeySet
from tests.signing.messages import MESSAGES
from tests.signing.verifiers import mailauth, opendkim, results, write_key_records

KEY_SETS = ["rsa_only", "rsa_and_ed25519"]


def sign_to_file(keys: KeySet, message: bytes, path: Path) -> tuple[Path, Path, Path]:
    result = Signer(keys.keyring).sign(message)
    assert result.signed, result.unsigned_reason
    path.write_bytes(result.content)
    keys_txt, dns_json = write_key_records(path.parent / "dns", keys.records)
    return path, keys_txt, dns_json


def expected(keys: KeySet, result: str) -> list[str]:
    return [result] * len(keys.records)


@pytest.mark.parametrize("keys_name", KEY_SETS)
@pytest.mark.parametrize("unsubscribe", [True, False], ids=["list-unsubscribe", "no-unsubscribe"])
@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_signatures_pass_both_verifiers(request, tmp_path, keys_name, kind, unsubscribe):
    keys: KeySet = request.getfixturevalue(keys_name)
    message, keys_txt, dns_json = sign_to_file(
        keys, MESSAGES[kind](unsubscribe), tmp_path / "signed.eml"
    )

    by_opendkim = opendkim(message, keys_txt)
    by_mailauth = mailauth(message, dns_json)

    assert results(by_opendkim) == expected(keys, "pass"), by_opendkim
    assert results(by_mailauth) == expected(keys, "pass"), by_mailauth
    selectors = [name.split(".", 1)[0] for name in keys.records]
    assert [v.selector for v in by_opendkim] == selectors  # RSA above Ed25519
    assert [v.selector for v in by_mailauth] == selectors


def add_header_on_top(content: bytes, field: bytes) -> bytes:
    return field + b"\r\n" + content


def add_header_after_signed_ones(content: bytes, field: bytes) -> bytes:
    head, separator, body = content.partition(b"\r\n\r\n")
    return head + b"\r\n" + field + separator + body


TAMPERING = {
    "second From on top": lambda c: add_header_on_top(c, b"From: Bank <alerts@bank.example>"),
    "second From below": lambda c: add_header_after_signed_ones(
        c, b"From: Bank <alerts@bank.example>"
    ),
    "second Subject": lambda c: add_header_on_top(c, b"Subject: Urgent: verify your account"),
    "added List-Unsubscribe": lambda c: add_header_after_signed_ones(
        c, b"List-Unsubscribe: <https://evil.example/u>"
    ),
    "appended body": lambda c: c + b"\r\nClick https://evil.example/win\r\n",
}


@pytest.mark.parametrize("keys_name", KEY_SETS)
@pytest.mark.parametrize("change", sorted(TAMPERING))
def test_changes_after_signing_fail_both_verifiers(request, tmp_path, keys_name, change):
    keys: KeySet = request.getfixturevalue(keys_name)
    unsubscribe = change != "added List-Unsubscribe"
    message, keys_txt, dns_json = sign_to_file(
        keys, MESSAGES["plain"](unsubscribe), tmp_path / "signed.eml"
    )
    message.write_bytes(TAMPERING[change](message.read_bytes()))

    by_opendkim = opendkim(message, keys_txt)
    by_mailauth = mailauth(message, dns_json)

    assert len(by_opendkim) == len(keys.records), by_opendkim
    assert len(by_mailauth) == len(keys.records), by_mailauth
    # not merely "not pass" (a key lookup problem would be that too): the signature is wrong
    assert results(by_opendkim) == expected(keys, "fail"), by_opendkim
    if change == "appended body":
        assert {(v.result, v.detail) for v in by_mailauth} == {
            ("neutral", "body hash did not verify")
        }
    else:
        assert {(v.result, v.detail) for v in by_mailauth} == {("fail", "bad signature")}
