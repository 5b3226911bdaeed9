"""Sender domains served by the real NSD fixture, keys made by the real `relay dkim keygen`,
and `relay dns-check` run as a subprocess with a TOML configuration."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from tests.signing.conftest import Keygen, keygen, run_relay
from tests.support.dns_server import DnsServer, txt


def publish_key(dns_server: DnsServer, made: Keygen, value: str | None = None) -> None:
    dns_server.add(txt(made.record_name, made.record_value if value is None else value))


def make_key(tmp_path: Path, domain: str, selector: str, *options: str) -> Keygen:
    return keygen(tmp_path / "keys", domain, selector, *options)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    def lines(self) -> dict[str, tuple[str, str]]:
        """check name -> (STATUS, detail) from the human-readable output."""
        found: dict[str, tuple[str, str]] = {}
        for line in self.stdout.splitlines():
            parts = line.split(None, 2)
            if len(parts) == 3 and parts[0].isupper() and parts[0] != "NOTE":
                found[parts[1]] = (parts[0], parts[2])
        return found

    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def dns_check(
    tmp_path: Path,
    domain: str,
    *,
    nameserver: str,
    keys: list[dict[str, str]],
    egress: list[str] | None = None,
    timeout: float = 2,
    options: tuple[str, ...] = (),
) -> Outcome:
    config: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "dns": {"nameservers": [nameserver], "timeout": timeout},
        "delivery": {"egress_addresses": ["127.0.0.1"] if egress is None else egress},
        "dkim": {"keys": keys},
    }
    path = tmp_path / "relay.toml"
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
    result: subprocess.CompletedProcess[str] = run_relay(
        "dns-check", domain, "--config", str(path), *options, cwd=tmp_path
    )
    return Outcome(result.returncode, result.stdout, result.stderr)


def json_report(
    tmp_path: Path,
    domain: str,
    *,
    nameserver: str,
    keys: list[dict[str, str]],
    exit_status: int,
) -> dict[str, Any]:
    """`relay dns-check DOMAIN --json`, which must exit with `exit_status`; its report."""
    outcome = dns_check(tmp_path, domain, nameserver=nameserver, keys=keys, options=("--json",))
    assert outcome.returncode == exit_status, outcome.stdout + outcome.stderr
    report: dict[str, Any] = outcome.json()
    return report
