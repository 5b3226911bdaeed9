"""The policy stage's cache of sender-domain checks, against real NSD servers: a result is kept
for the TTL and asked again after it; a temporary DNS failure is never kept; concurrent
transactions share one check."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

from relay.config.model import DnsSettings
from relay.dnscheck.cache import ReadinessCache
from relay.signing.keys import KeyRing
from tests.support.dns_server import DnsServer, txt
from tests.support.network import free_port

TTL = 300.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_for(address: str, clock: Clock) -> ReadinessCache:
    settings = DnsSettings.model_validate({"nameservers": [address], "timeout": 1})
    return ReadinessCache(settings, KeyRing(), [ip_address("127.0.0.1")], TTL, clock)


def test_a_result_is_kept_for_the_ttl_then_asked_again(dns_server):
    domain = "cached-spf.test"
    clock = Clock()
    cache = cache_for(dns_server.address, clock)

    async def scenario() -> list[str]:
        statuses = [(await cache.envelope_spf(domain)).status]
        dns_server.add(txt(domain, "v=spf1 ip4:127.0.0.1 -all"))
        statuses.append((await cache.envelope_spf(domain)).status)
        clock.now += TTL - 1
        statuses.append((await cache.envelope_spf(domain)).status)
        clock.now += 2
        await asyncio.sleep(1.5)  # the resolver's own cache holds the NXDOMAIN for 1 s (SOA)
        statuses.append((await cache.envelope_spf(domain)).status)
        return statuses

    assert asyncio.run(scenario()) == ["missing", "missing", "missing", "pass"]


def test_a_temporary_failure_is_not_kept(tmp_path):
    port = free_port()
    clock = Clock()
    cache = cache_for(f"127.0.0.1:{port}", clock)
    domain = "late-dns.test"
    first = asyncio.run(cache.envelope_spf(domain))
    assert first.status == "temperror"

    server = DnsServer(tmp_path / "nsd", port)  # DNS comes back, the clock has not moved
    server.start()
    try:
        server.add(txt(domain, "v=spf1 ip4:127.0.0.1 -all"))
        assert asyncio.run(cache.envelope_spf(domain)).status == "pass"
    finally:
        server.stop()


def test_concurrent_transactions_share_one_check(dns_server):
    domain = "shared-check.test"
    dns_server.add(
        txt(domain, "v=spf1 ip4:127.0.0.1 -all"), txt(f"_dmarc.{domain}", "v=DMARC1; p=none")
    )
    cache = cache_for(dns_server.address, Clock())

    async def scenario():
        return await asyncio.gather(*(cache.sender(domain, domain) for _ in range(5)))

    first, *others = asyncio.run(scenario())
    assert first.check("dmarc").status == "pass"
    assert all(other is first for other in others)
