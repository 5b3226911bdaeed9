"""A real redis-server on a loopback port, in a directory of its own, without persistence: the
shared store of several relay nodes (relay.stores.redis)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.network import wait_for_port


class RedisServer:
    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                server,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_for_port("127.0.0.1", self.port):
            self.stop()
            raise RuntimeError(f"redis-server did not start; see {self.directory}/redis.log")
        return self

    def stop(self) -> None:
        """SIGTERM: Redis closes its connections and exits."""
        self._end(subprocess.Popen.terminate)

    def kill(self) -> None:
        """SIGKILL: gone at once, connections reset, as in a crash."""
        self._end(subprocess.Popen.kill)

    def _end(self, signal: Callable[[subprocess.Popen[bytes]], None]) -> None:
        if self.process is not None:
            signal(self.process)
            self.process.wait(timeout=10)
            self.process = None
