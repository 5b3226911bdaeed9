"""`relay dkim keygen`: a 0600 key that is never overwritten, RSA at least 2048 bits, and a TXT
record whose p= is the key's public half (SPKI for RSA, raw 32 bytes for Ed25519)."""

from __future__ import annotations

import base64
import stat
import tomllib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from relay.config.model import DkimSettings
from relay.signing import load_keys
from tests.signing.conftest import keygen, run_relay


def tags(record: str) -> dict[str, str]:
    return dict(
        (part.split("=", 1)[0].strip(), part.split("=", 1)[1].strip())
        for part in record.split(";")
        if part.strip()
    )


def test_rsa_key_file_record_and_config_snippet(tmp_path):
    made = keygen(tmp_path / "keys", "Shop.Example.", "s2025")

    assert made.path == (tmp_path / "keys" / "s2025._domainkey.shop.example.pem").resolve()
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(made.path.parent.stat().st_mode) == 0o700
    private_key = serialization.load_pem_private_key(made.path.read_bytes(), None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert private_key.key_size == 2048

    assert made.record_name == "s2025._domainkey.shop.example"
    record = tags(made.record_value)
    assert (record["v"], record["k"]) == ("DKIM1", "rsa")
    public = serialization.load_der_public_key(base64.b64decode(record["p"]))  # SPKI, not PKCS#1
    assert public.public_numbers() == private_key.public_key().public_numbers()
    zone_strings = made.output.split("IN TXT ( ", 1)[1].rsplit(" )", 1)[0].split('" "')
    assert len(zone_strings) == 2  # 2048-bit record > 255 characters: split for the zone file
    assert all(len(text.strip('"')) <= 255 for text in zone_strings)

    snippet = made.output.split("Add to the configuration:", 1)[1].split("and publish", 1)[0]
    settings = DkimSettings.model_validate(tomllib.loads(snippet)["dkim"])
    keyring = load_keys(settings, "snippet.toml")
    assert [key.record_name for key in keyring.for_domain("shop.example")] == [made.record_name]


def test_ed25519_record_is_the_raw_public_key(tmp_path):
    made = keygen(tmp_path, "shop.example", "ed2025", "--algorithm", "ed25519-sha256")

    private_key = serialization.load_pem_private_key(made.path.read_bytes(), None)
    assert isinstance(private_key, ed25519.Ed25519PrivateKey)
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    record = tags(made.record_value)
    assert record["k"] == "ed25519"
    raw = base64.b64decode(record["p"])
    assert len(raw) == 32  # RFC 8463 §4: the bare key, not SubjectPublicKeyInfo
    assert raw == private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert 'algorithm = "ed25519-sha256"' in made.output


def test_4096_bit_key(tmp_path):
    made = keygen(tmp_path, "shop.example", "big", "--bits", "4096")
    private_key = serialization.load_pem_private_key(made.path.read_bytes(), None)
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert private_key.key_size == 4096
    assert len(made.record_value) > 255 * 2


def test_refuses_to_overwrite(tmp_path):
    made = keygen(tmp_path, "shop.example", "s1")
    before = made.path.read_bytes()

    again = run_relay(
        "dkim", "keygen", "shop.example", "s1", "--directory", str(tmp_path), cwd=tmp_path
    )

    assert again.returncode == 1
    assert "exists; relay never overwrites a key" in again.stderr
    assert made.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [made.path.name]  # no temporary left


@pytest.mark.parametrize("bits", ["1024", "2047", "8192"])
def test_refuses_weak_or_oversized_rsa(tmp_path, bits):
    result = run_relay(
        "dkim",
        "keygen",
        "shop.example",
        "s1",
        "--bits",
        bits,
        "--directory",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert f"--bits {bits}: RSA DKIM keys must have 2048 to 4096 bits" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_bad_selector(tmp_path):
    result = run_relay(
        "dkim", "keygen", "shop.example", "bad selector", "--directory", str(tmp_path), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "selector:" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_default_directory_is_state_dir(tmp_path):
    config = tmp_path / "relay.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    result = run_relay(
        "dkim", "keygen", "shop.example", "s1", "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "dkim" / "s1._domainkey.shop.example.pem").is_file()
