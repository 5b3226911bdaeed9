"""Keys made by the real `relay dkim keygen`, loaded as relay loads [[dkim.keys]]."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.config.model import DkimKey, DkimSettings
from relay.signing import KeyRing, load_keys

RELAY = [sys.executable, "-m", "relay"]
DOMAIN = "shop.example"


def run_relay(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RELAY, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )


@dataclass(frozen=True)
class Keygen:
    """What `relay dkim keygen` wrote and printed."""

    path: Path
    record_name: str
    record_value: str
    output: str

    def key_entry(self, algorithm: str = "rsa-sha256") -> dict[str, str]:
        """The [[dkim.keys]] entry of this key."""
        selector, _, domain = self.record_name.partition("._domainkey.")
        return {
            "domain": domain,
            "selector": selector,
            "private_key": str(self.path),
            "algorithm": algorithm,
        }


def keygen(directory: Path, domain: str, selector: str, *options: str) -> Keygen:
    result = run_relay(
        "dkim",
        "keygen",
        domain,
        selector,
        "--directory",
        str(directory),
        *options,
        cwd=directory.parent,
    )
    assert result.returncode == 0, result.stderr
    entry = re.search(r'^private_key = "(.*)"$', result.stdout, re.M)
    zone = re.search(r"^(\S+)\. IN TXT \( (.*) \)$", result.stdout, re.M)
    assert entry, result.stdout
    assert zone, result.stdout
    path = Path(entry.group(1))
    value = "".join(re.findall(r'"([^"]*)"', zone.group(2)))
    return Keygen(path, zone.group(1), value, result.stdout)


@dataclass(frozen=True)
class KeySet:
    keyring: KeyRing
    records: dict[str, str]  # SELECTOR._domainkey.DOMAIN -> TXT value


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Keygen]:
    directory = tmp_path_factory.mktemp("dkim-keys")
    return {
        "rsa": keygen(directory, DOMAIN, "rsa2025"),
        "ed25519": keygen(directory, DOMAIN, "ed2025", "--algorithm", "ed25519-sha256"),
    }


def key_set(*keys: tuple[Keygen, str]) -> KeySet:
    settings = DkimSettings(
        keys=[
            DkimKey(
                domain=DOMAIN,
                selector=made.record_name.split(".", 1)[0],
                private_key=made.path,
                algorithm=algorithm,
            )
            for made, algorithm in keys
        ]
    )
    keyring = load_keys(settings, "test.toml")
    return KeySet(keyring, {made.record_name: made.record_value for made, _ in keys})


@pytest.fixture(scope="session")
def rsa_only(generated: dict[str, Keygen]) -> KeySet:
    return key_set((generated["rsa"], "rsa-sha256"))


@pytest.fixture(scope="session")
def rsa_and_ed25519(generated: dict[str, Keygen]) -> KeySet:
    return key_set((generated["rsa"], "rsa-sha256"), (generated["ed25519"], "ed25519-sha256"))
