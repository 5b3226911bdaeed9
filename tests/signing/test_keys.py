"""load_keys refuses keys relay must not sign with (MBP-DKIM-KEY, RFC 8301 §3.2) with
`FILE:dkim.keys[i].private_key: problem`, all problems at once; KeyRing picks the last key listed
per domain and algorithm (rotation by selector)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from relay.config.model import DkimKey, DkimSettings
from relay.errors import ConfigError
from relay.signing import KeyRing, Signer, generate, load_keys

SOURCE = "relay.toml"


def write_key(path: Path, private_key, mode: int = 0o600, password: bytes | None = None) -> Path:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )
    os.chmod(path, mode)
    return path


def settings(*entries: tuple[str, str, Path, str]) -> DkimSettings:
    return DkimSettings(
        keys=[
            DkimKey(domain=domain, selector=selector, private_key=path, algorithm=algorithm)
            for domain, selector, path, algorithm in entries
        ]
    )


def problems(dkim_settings: DkimSettings) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_keys(dkim_settings, SOURCE)
    return caught.value.problems


@pytest.fixture(scope="module")
def rsa_2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_key_readable_or_writable_by_others_is_refused(tmp_path, rsa_2048, mode):
    path = write_key(tmp_path / "k.pem", rsa_2048, mode)
    assert problems(settings(("shop.example", "s1", path, "rsa-sha256"))) == [
        f"{SOURCE}:dkim.keys[0].private_key: {path}: mode {mode:04o} lets group or others read"
        " or write the key; it must be readable only by relay's user (chmod 600)"
    ]


def test_1024_bit_rsa_is_refused(tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = write_key(tmp_path / "weak.pem", weak)
    assert problems(settings(("shop.example", "s1", path, "rsa-sha256"))) == [
        f"{SOURCE}:dkim.keys[0].private_key: {path}: RSA key of 1024 bits;"
        " relay signs with 2048 to 4096 bits (RFC 8301 §3.2)"
    ]


def test_every_problem_is_reported_at_once(tmp_path, rsa_2048):
    ed = write_key(tmp_path / "ed.pem", ed25519.Ed25519PrivateKey.generate())
    good = write_key(tmp_path / "good.pem", rsa_2048)
    (tmp_path / "garbage.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n")
    os.chmod(tmp_path / "garbage.pem", 0o600)
    ecdsa = write_key(tmp_path / "ec.pem", ec.generate_private_key(ec.SECP256R1()))
    locked = write_key(tmp_path / "locked.pem", rsa_2048, password=b"secret")

    found = problems(
        settings(
            ("shop.example", "a", tmp_path / "missing.pem", "rsa-sha256"),
            ("shop.example", "b", ed, "rsa-sha256"),
            ("shop.example", "c", good, "ed25519-sha256"),
            ("shop.example", "d", tmp_path / "garbage.pem", "rsa-sha256"),
            ("shop.example", "e", ecdsa, "rsa-sha256"),
            ("shop.example", "f", locked, "rsa-sha256"),
            ("shop.example", "F", good, "rsa-sha256"),
            ("shop.example", "g", tmp_path, "rsa-sha256"),
        )
    )

    prefix = f"{SOURCE}:dkim.keys"
    assert found == [
        f"{prefix}[0].private_key: {tmp_path / 'missing.pem'}: cannot read: No such file or"
        " directory",
        f"{prefix}[1].private_key: {ed}: not an RSA key, but algorithm is rsa-sha256",
        f"{prefix}[2].private_key: {good}: not an Ed25519 key, but algorithm is ed25519-sha256",
        f"{prefix}[3].private_key: {tmp_path / 'garbage.pem'}: not a PEM private key"
        " (PKCS#8 or PKCS#1)",
        f"{prefix}[4].private_key: {ecdsa}: not an RSA key, but algorithm is rsa-sha256",
        f"{prefix}[5].private_key: {locked}: the key is encrypted; relay needs an unencrypted"
        " PEM key",
        f"{prefix}[6].selector: 'F' of shop.example is already dkim.keys[5] (one DNS record per"
        " selector)",
        f"{prefix}[7].private_key: {tmp_path}: cannot read: Is a directory",
    ]


def test_pkcs1_rsa_key_is_accepted(tmp_path, rsa_2048):
    path = tmp_path / "pkcs1.pem"
    path.write_bytes(
        rsa_2048.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)
    keyring = load_keys(settings(("shop.example", "s1", path, "rsa-sha256")), SOURCE)
    assert keyring.for_domain("shop.example")[0].bits == 2048


def test_last_key_per_domain_and_algorithm_signs(tmp_path):
    old = generate("shop.example", "2024", tmp_path)
    new = generate("shop.example", "2025", tmp_path)
    ed = generate("shop.example", "ed2025", tmp_path, "ed25519-sha256")
    other = generate("other.example", "s1", tmp_path)
    keyring = load_keys(
        settings(
            ("shop.example", "2024", old.private_key_path, "rsa-sha256"),
            ("shop.example", "ed2025", ed.private_key_path, "ed25519-sha256"),
            ("Shop.Example.", "2025", new.private_key_path, "rsa-sha256"),
            ("other.example", "s1", other.private_key_path, "rsa-sha256"),
        ),
        SOURCE,
    )

    assert len(keyring) == 4
    assert keyring.domains == {"shop.example", "other.example"}
    assert [(k.selector, k.algorithm) for k in keyring.for_domain("SHOP.example.")] == [
        ("2025", "rsa-sha256"),
        ("ed2025", "ed25519-sha256"),
    ]
    assert [k.selector for k in keyring.for_domain("other.example")] == ["s1"]
    # a subdomain is signed with its parent's keys (relaxed alignment); a parent is not
    assert keyring.signing_domain("news.shop.example") == "shop.example"
    assert keyring.for_domain("news.shop.example") == keyring.for_domain("shop.example")
    assert keyring.signing_domain("example") is None
    assert keyring.for_domain("example") == []
    assert KeyRing().for_domain("shop.example") == []


def test_rotation_keeps_mail_signed_before_valid(tmp_path):
    """Mail signed with the old selector keeps its signature; the new key signs what follows."""
    old = generate("shop.example", "2024", tmp_path)
    new = generate("shop.example", "2025", tmp_path)
    message = b"From: news@shop.example\r\nSubject: hi\r\n\r\nbody\r\n"
    before = Signer(
        load_keys(settings(("shop.example", "2024", old.private_key_path, "rsa-sha256")), SOURCE)
    ).sign(message)

    rotated = load_keys(
        settings(
            ("shop.example", "2024", old.private_key_path, "rsa-sha256"),
            ("shop.example", "2025", new.private_key_path, "rsa-sha256"),
        ),
        SOURCE,
    )
    after = Signer(rotated).sign(message)

    assert [s.selector for s in before.signed_by] == ["2024"]
    assert [s.selector for s in after.signed_by] == ["2025"]
    assert b" s=2024;" in before.content
    assert b" s=2025;" in after.content
