"""relay itself, run as `relay serve --config FILE` in a subprocess, as an operator runs it."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import tomli_w

from tests.support.network import free_port, wait_for_port
from tests.support.polling import poll

RELAY = [sys.executable, "-m", "relay"]


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


class RelayProcess:
    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.directory = directory
        self.port = free_port()
        self.config = merge(
            {
                "state_dir": str(directory / "var"),
                # The backbone's tests exercise the MTA; policy tests name their policy files.
                "policy": {"files": []},
                "smtp": {"listen": f"127.0.0.1:{self.port}", "hostname": "relay.test"},
                "http": {"listen": f"127.0.0.1:{free_port()}"},
                "feedback": {"listen": f"127.0.0.1:{free_port()}"},
                "delivery": {
                    "helo_name": "relay.test",
                    "retry_schedule": ["1s"],
                    "shaping": {"default": {"connect_timeout": "5s", "command_timeout": "10s"}},
                },
            },
            config,
        )
        self.config_path = directory / "relay.toml"
        self.log_path = directory / "relay.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.spool = directory / "var" / "spool"

    def start(self) -> RelayProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(tomli_w.dumps(self.config))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*RELAY, "serve", "--config", str(self.config_path), "--log-level", "debug"],
            cwd=self.directory,
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        for key in ("smtp", "feedback", "http"):
            host, port = self.config[key]["listen"].rsplit(":", 1)
            if not wait_for_port(host, int(port)):
                self.stop()
                raise RuntimeError(f"relay did not start:\n{self.log}")
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """kill -9: no chance to flush or clean up."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    @property
    def http_url(self) -> str:
        """Where relay's HTTP listener answers, e.g. http://127.0.0.1:8025."""
        return f"http://{self.config['http']['listen']}"

    def smtp(self, **kwargs: Any) -> smtplib.SMTP:
        host, port = self.config["smtp"]["listen"].rsplit(":", 1)
        return smtplib.SMTP(host, int(port), timeout=15, **kwargs)

    def feedback_smtp(self) -> smtplib.SMTP:
        """A client of the feedback listener (bounces, complaint reports, unsubscribes)."""
        host, port = self.config["feedback"]["listen"].rsplit(":", 1)
        return smtplib.SMTP(host, int(port), timeout=60)

    def queue_files(self) -> list[Path]:
        queue = self.spool / "queue"
        return sorted(queue.iterdir()) if queue.exists() else []

    def wait_for_log(self, text: str, timeout: float = 20.0) -> str:
        log = poll(lambda: self.log if text in self.log else None, timeout)
        assert log is not None, f"{text!r} not in relay log:\n{self.log}"
        return log

    def assert_no_traceback(self) -> None:
        assert "Traceback" not in self.log, self.log


def serve_with_a_taken_port(directory: Path, section: str) -> tuple[int, str, int]:
    """`relay serve` on free ports except `[section] listen`, whose port another socket holds:
    (that port, relay's stderr, its exit status)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        ports = {name: free_port() for name in ("SMTP", "FEEDBACK", "HTTP")} | {section: port}
        result = subprocess.run(
            [*RELAY, "serve"],
            cwd=directory,
            env={
                **os.environ,
                **{f"RELAY_{name}__LISTEN": f"127.0.0.1:{p}" for name, p in ports.items()},
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    return port, result.stderr, result.returncode
