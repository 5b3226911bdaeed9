"""Waiting for another process (relay, a sink, NSD) to get somewhere: the one polling loop of the
test suite. Every wait has a deadline; what is waited for is a probe that answers None until it
has the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.05


def poll(probe: Callable[[], T | None], timeout: float) -> T | None:
    """The first result of `probe` that is not None, or None when `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None or time.monotonic() >= deadline:
            return result
        time.sleep(INTERVAL)
