"""Fixtures with real parts: NSD on a loopback port, aiosmtpd sinks as destination MX, and relay
started as a subprocess from a TOML file written by the test."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from relay.ingest.tls import ensure_self_signed, server_context
from tests.scenarios.compliance import EGRESS, SHOP_DOMAIN, ShopDomain
from tests.signing.conftest import keygen
from tests.support.dns_server import DnsServer, txt
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


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory, dns_server: DnsServer) -> ShopDomain:
    """The shop's sender domain, ready in the test DNS (MX, SPF, DMARC, RSA and Ed25519 DKIM
    keys), shared by every story that sends from shop.example."""
    directory = tmp_path_factory.mktemp("shop") / "keys"
    rsa = keygen(directory, SHOP_DOMAIN, "s2026")
    ed25519 = keygen(directory, SHOP_DOMAIN, "e2026", "--algorithm", "ed25519-sha256")
    dns_server.add(
        f"{SHOP_DOMAIN}. IN MX 10 mx.{SHOP_DOMAIN}.",
        f"mx.{SHOP_DOMAIN}. IN A 127.0.0.1",
        txt(SHOP_DOMAIN, f"v=spf1 ip4:{EGRESS} -all"),
        txt(f"_dmarc.{SHOP_DOMAIN}", "v=DMARC1; p=reject"),
        txt(rsa.record_name, rsa.record_value),
        txt(ed25519.record_name, ed25519.record_value),
    )
    return ShopDomain(rsa, ed25519)
