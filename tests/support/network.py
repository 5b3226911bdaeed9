"""Loopback helpers."""

from __future__ import annotations

import itertools
import os
import random
import socket
from collections.abc import Iterator

from tests.support.polling import poll

# Test servers listen below Linux's ephemeral range (32768-60999), where no client socket of
# another test takes the port between the probe and the server's bind; each pytest-xdist
# worker hands out ports from a slice of its own, in turn, so two workers never pick the same.
_PORTS = (12000, 32000)


def _port_cycle() -> Iterator[int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), index + 1)
    size = (_PORTS[1] - _PORTS[0]) // workers
    first = _PORTS[0] + index * size
    offset = random.randrange(size)
    for n in itertools.count():
        yield first + (offset + n) % size


_ports = _port_cycle()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, not handed out lately by this process."""
    for _ in range(1000):
        port = next(_ports)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {host} in {_PORTS}")


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> bool:
    def connects() -> bool | None:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return None

    return poll(connects, timeout) is not None
