"""A DKIM key relay must not sign with stops `check-config` and `serve` (exit 2, FILE:key)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.signing.conftest import run_relay


@pytest.mark.parametrize("command", ["check-config", "serve"])
def test_weak_or_exposed_key_is_a_config_error(tmp_path, command):
    weak = tmp_path / "weak.pem"
    weak.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    weak.chmod(0o600)
    exposed = tmp_path / "exposed.pem"
    exposed.write_bytes(weak.read_bytes())
    exposed.chmod(0o644)
    config = tmp_path / "relay.toml"
    config.write_text(
        f'[[dkim.keys]]\ndomain = "shop.example"\nselector = "a"\nprivate_key = "{weak}"\n'
        f'[[dkim.keys]]\ndomain = "shop.example"\nselector = "b"\nprivate_key = "{exposed}"\n'
    )
    result = run_relay(command, "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result
    assert f"{config}:dkim.keys[0].private_key: {weak}: " in result.stderr
    assert "1024" in result.stderr
    assert f"{config}:dkim.keys[1].private_key: {exposed}: " in result.stderr
    assert "Traceback" not in result.stderr
