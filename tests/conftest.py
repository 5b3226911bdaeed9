"""Fixtures with real parts: NSD on a loopback port, aiosmtpd sinks as destination MX, and relay
started as a subprocess from a TOML file written by the test."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.ingest.tls import ensure_self_signed, server_context
from tests.support.dns_server import DnsServer
from tests.support.network import free_port
from tests.support.redis_server import RedisServer
from tests.support.relay_process import RelayProcess, merge
from tests.support.sink import Sink


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DnsServer]:
    server = DnsServer(tmp_path_factory.mktemp("nsd"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server per test session (per xdist worker); tests keep apart by key prefix."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sink_tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    cert, key = ensure_self_signed(tmp_path_factory.mktemp("sink-tls"), "mx.sink.test")
    return server_context(cert, key)


@pytest.fixture
def make_sink() -> Iterator[Callable[..., Any]]:
    """Start a Sink (or another listener with start() and stop(): `kind`, e.g. the
    misbehaving ones of tests/support/shaping_sinks.py); stopped after the test."""
    sinks: list[Any] = []

    def start(kind: Callable[..., Any] = Sink, **kwargs: Any) -> Any:
        sink = kind(**kwargs).start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
def sink(make_sink: Callable[..., Sink]) -> Sink:
    return make_sink()


@pytest.fixture
def make_relay(tmp_path: Path, dns_server: DnsServer) -> Iterator[Callable[..., RelayProcess]]:
    """Start relay with the test's config merged over defaults that point at the test DNS."""
    relays: list[RelayProcess] = []

    def start(config: dict[str, Any] | None = None, name: str = "relay") -> RelayProcess:
        base = {"dns": {"nameservers": [dns_server.address], "timeout": 2}}
        relay = RelayProcess(tmp_path / name, merge(base, config or {}))
        relays.append(relay.start())
        return relay

    yield start
    for relay in relays:
        relay.stop()
        relay.assert_no_traceback()
