"""Policy files from the operator's side: `relay policy list` shows what runs; a broken file
stops `check-config` and `serve` with `FILE:rules.ID.key: problem` (exit 2)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from relay.policy.files import policy_paths

RELAY = [sys.executable, "-m", "relay"]


def run(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RELAY, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_policy_list_shows_every_shipped_file_and_rule(tmp_path):
    result = run("policy", "list", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for path in policy_paths(None):
        assert f"{path}: " in result.stdout
    assert (
        "PRC-SUBJECT-AD-PREFIX    data fix    互联网电子邮件服务管理办法 Art. 13(3)"
        in result.stdout
    )
    assert "(recipients in CN)" in result.stdout
    assert "(every recipient)" in result.stdout


@pytest.mark.parametrize("command", ["check-config", "serve", "policy list"])
def test_broken_policy_file_stops_relay(tmp_path, command):
    broken = tmp_path / "broken.toml"
    broken.write_text(
        'name = "broken"\n'
        '[rules.PRC-SUBJECT-AD-PREFIX]\naction = "reject"\ncitation = "Art. 13(3)"\n'
        'reply = "550 Advertising needs a prefix"\n'
        '[rules.NO-SUCH-RULE]\naction = "warn"\ncitation = "none"\n'
    )
    config = tmp_path / "relay.toml"
    config.write_text(f'[policy]\nfiles = ["{broken}"]\n')
    result = run(*command.split(), "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result
    assert f"{broken}:rules.PRC-SUBJECT-AD-PREFIX.reply: " in result.stderr
    assert f"{broken}:rules.NO-SUCH-RULE: no rule with this id" in result.stderr
    assert "Traceback" not in result.stderr
