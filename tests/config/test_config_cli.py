"""`relay check-config` and `relay serve` on good and bad configuration: bad values print
`FILE:key: problem` and exit 2, never a traceback."""

from __future__ import annotations

import contextlib
import os
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.network import free_port, wait_for_port

RELAY = [sys.executable, "-m", "relay"]


def run_relay(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30):
    return subprocess.run(
        [*RELAY, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def listening_on(port: int) -> dict[str, str]:
    """Submission on `port`, feedback and HTTP on other free ports (not the defaults)."""
    return {
        "RELAY_SMTP__LISTEN": f"127.0.0.1:{port}",
        "RELAY_FEEDBACK__LISTEN": f"127.0.0.1:{free_port()}",
        "RELAY_HTTP__LISTEN": f"127.0.0.1:{free_port()}",
    }


@dataclass
class Served:
    """How a `relay serve` run ended: filled in when its `with serving(...)` block ends."""

    returncode: int | None = None
    stderr: str = ""


@contextlib.contextmanager
def serving(cwd: Path, env: dict[str, str], port: int) -> Iterator[Served]:
    """`relay serve` in `cwd` with exactly `env`, listening on `port`, until the block ends."""
    served = Served()
    with subprocess.Popen(
        [*RELAY, "serve"], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert wait_for_port("127.0.0.1", port), f"relay did not listen on port {port}"
            yield served
        finally:
            process.terminate()
            _, served.stderr = process.communicate(timeout=20)
            served.returncode = process.returncode


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_embedded_defaults_are_valid(tmp_path):
    result = run_relay("check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "<embedded defaults>: configuration OK" in result.stdout


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[smtp]\nlisten = "127.0.0.1:99999"\n', "smtp.listen: '127.0.0.1:99999': port must be"),
        ('[smtp]\nlisten = "127.0.0.1"\n', "smtp.listen: '127.0.0.1': port missing"),
        ("[smtp]\nmax_message_size = -5\n", "smtp.max_message_size: Input should be greater"),
        ('[smtp]\nmax_message_size = "big"\n', "smtp.max_message_size: Input should be a valid"),
        ("[smtp]\nmax_recipients = 0\n", "smtp.max_recipients: Input should be greater"),
        ('[smtp]\ntrusted_networks = ["10.0.0.0/33"]\n', "smtp.trusted_networks:"),
        ('[smtp]\ntls_cert = "/nonexistent.crt"\n', "smtp: tls_cert and tls_key must be given"),
        (
            '[[smtp.users]]\nname = "app"\npassword_hash = "secret"\n',
            "smtp.users[0].password_hash: must be an Argon2 hash",
        ),
        ('[dns]\nnameservers = ["ns.example:53"]\n', "dns.nameservers: ns.example:53: a name"),
        ('[delivery]\nretry_schedule = ["1m", "5x"]\n', "delivery.retry_schedule[1]: '5x' is"),
        ("[delivery]\nretry_schedule = []\n", "delivery.retry_schedule: List should have"),
        ("[delivery]\nmax_lifetime = 5\n", "delivery.max_lifetime: must be a string"),
        ('[delivery]\nroutes = { "a.test" = "[127.0.0.1" }\n', "delivery.routes.a.test:"),
        ('[delivery]\ntls = { "a.test" = "yes" }\n', "delivery.tls.a.test: Input should be"),
        ('[delivery]\nca_file = "/nonexistent.pem"\n', "delivery.ca_file: /nonexistent.pem: not"),
        ("[delivery]\nmta_sts_port = 0\n", "delivery.mta_sts_port: Input should be greater"),
        ("[delivery]\nretry_jitter = 0.9\n", "delivery.retry_jitter: Input should be less"),
        (
            '[delivery.shaping.default]\nrate = ["5 per minute"]\n',
            "delivery.shaping.default.rate[0]: '5 per minute' is not a rate",
        ),
        (
            "[delivery.shaping.gmial]\nmax_connections = 2\n",
            "delivery.shaping.gmial: neither an entry of",
        ),
        (
            "[delivery.shaping.gmail]\nmax_connections = 0\n",
            "delivery.shaping.gmail.max_connections: Input should be greater",
        ),
        ('[smtp]\nlisen = "127.0.0.1:25"\n', "smtp.lisen: unknown key"),
        ('[feedback]\nlisten = "x:y"\n', "feedback.listen:"),
        ('[http]\nlisten = "127.0.0.1:0"\n', "http.listen:"),
        ('[stores]\nbackend = "mysql"\n', "stores.backend: Input should be 'sqlite' or 'redis'"),
        ('[redis]\nurl = "http://cache:6379"\n', "redis.url: 'http://cache:6379': use redis://"),
        ("[redis]\ntimeout = 0\n", "redis.timeout: Input should be greater"),
        ('[redis]\nkey_prefix = ""\n', "redis.key_prefix: String should have at least"),
        (
            '[redis]\nurl = "redis://:pw@cache"\npassword_file = "/run/redis.pw"\n',
            "redis: give the password in the url or in password_file, not both",
        ),
    ],
)
def test_bad_value_names_file_and_key(tmp_path, toml, expected):
    config = write(tmp_path / "relay.toml", toml)
    for command in ("check-config", "serve"):
        result = run_relay(command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert f"{config}:{expected}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_every_problem_is_reported_at_once(tmp_path):
    config = write(
        tmp_path / "relay.toml",
        '[smtp]\nmax_recipients = "many"\n[delivery]\nmax_lifetime = "forever"\n',
    )
    result = run_relay("check-config", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{config}:smtp.max_recipients: ")
    assert lines[1].startswith(f"{config}:delivery.max_lifetime: ")


def test_bad_backoff_table_names_its_file_and_rule(tmp_path):
    table = write(
        tmp_path / "backoff.toml",
        '[[rules]]\nname = "x"\ntext = "(unclosed"\naction = "slow"\n'
        '[[rules]]\nname = "y"\naction = "shout"\n',
    )
    config = write(tmp_path / "relay.toml", f'[delivery]\nbackoff_file = "{table}"\n')
    for command in ("check-config", "serve"):
        result = run_relay(command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        problems = [line for line in result.stderr.splitlines() if line.startswith(str(table))]
        assert problems[0].startswith(f"{table}:rules[0].text: not a regular expression")
        assert problems[1].startswith(f"{table}:rules[1].action: Input should be 'slow'")
        assert "Traceback" not in result.stderr


def test_invalid_toml_and_missing_file(tmp_path):
    config = write(tmp_path / "relay.toml", "[smtp\nlisten = 1\n")
    result = run_relay("check-config", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{config}: invalid TOML: ")
    missing = tmp_path / "missing.toml"
    result = run_relay("serve", "--config", str(missing), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{missing}: cannot read the configuration file" in result.stderr
    assert "Traceback" not in result.stderr


def test_environment_overrides_and_is_named_when_wrong(tmp_path):
    config = write(tmp_path / "relay.toml", "[smtp]\nmax_message_size = 1000\n")
    env = {"RELAY_SMTP__MAX_MESSAGE_SIZE": "lots"}
    result = run_relay("check-config", "--config", str(config), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "RELAY_SMTP__MAX_MESSAGE_SIZE:smtp.max_message_size: Input should be" in result.stderr
    env = {"RELAY_DELIVERY__ROUTES": "{not json"}
    result = run_relay("check-config", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("RELAY_*: a list or table value in the environment")


def test_unloadable_certificate_is_a_config_error(tmp_path):
    cert = write(tmp_path / "cert.pem", "not a certificate\n")
    key = write(tmp_path / "key.pem", "not a key\n")
    config = write(tmp_path / "relay.toml", f'[smtp]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    result = run_relay("check-config", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{config}:smtp.tls_cert: cannot load certificate {cert}" in result.stderr


def test_hash_password_output_is_accepted_as_a_user(tmp_path):
    result = run_relay("hash-password", "--password", "s3cret", cwd=tmp_path)
    assert result.returncode == 0
    digest = result.stdout.strip()
    assert digest.startswith("$argon2id$")
    assert "s3cret" not in digest
    config = write(
        tmp_path / "relay.toml", f'[[smtp.users]]\nname = "app"\npassword_hash = "{digest}"\n'
    )
    assert run_relay("check-config", "--config", str(config), cwd=tmp_path).returncode == 0


def test_environment_sets_listen_address_for_serve(tmp_path):
    port = free_port()
    env = {**os.environ, **listening_on(port), "RELAY_STATE_DIR": "state"}
    with (
        serving(tmp_path, env, port) as served,
        smtplib.SMTP("127.0.0.1", port, timeout=10) as client,
    ):
        code, _ = client.ehlo("client.test")
        assert code == 250
    assert served.returncode == 0, served.stderr
    assert "Traceback" not in served.stderr
    assert (tmp_path / "state" / "spool" / "queue").is_dir()
    assert (tmp_path / "state" / "tls" / "selfsigned.crt").is_file()


def test_port_in_use_is_reported_without_traceback(tmp_path):
    port = free_port()
    with serving(tmp_path, {**os.environ, **listening_on(port)}, port):
        second = run_relay(
            "serve",
            cwd=tmp_path,
            env={"RELAY_SMTP__LISTEN": f"127.0.0.1:{port}", "RELAY_STATE_DIR": "second"},
        )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} ([smtp] listen)" in second.stderr
    assert "Traceback" not in second.stderr


def test_serve_without_arguments_uses_embedded_defaults(tmp_path):
    """DESIGN §4: submission on 127.0.0.1:2525 and state under ./var/."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("RELAY_")}
    with (
        serving(tmp_path, env, 2525) as served,
        smtplib.SMTP("127.0.0.1", 2525, timeout=10) as client,
    ):
        code, features = client.ehlo("client.test")
        assert code == 250
        assert b"STARTTLS" in features
    assert served.returncode == 0, served.stderr
    assert "config <embedded defaults>" in served.stderr
    assert (tmp_path / "var" / "spool" / "index.sqlite").is_file()


def test_shipped_example_configuration_is_valid(tmp_path):
    example = Path(__file__).resolve().parents[2] / "config" / "relay.example.toml"
    result = run_relay("check-config", "--config", str(example), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{example}: configuration OK" in result.stdout


def test_second_process_on_the_same_state_is_refused(tmp_path):
    """One audit chain has one writer: a second relay on the same state directory stops."""
    port = free_port()
    with serving(tmp_path, {**os.environ, **listening_on(port)}, port):
        second = run_relay("serve", cwd=tmp_path, env={"RELAY_SMTP__LISTEN": "127.0.0.1:1"})
    assert second.returncode == 1
    assert "another process is appending to this audit log" in second.stderr
    assert "Traceback" not in second.stderr
