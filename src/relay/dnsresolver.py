"""The dnspython resolver every part of relay uses: `[dns] nameservers` (host:port, any port)
or, when none are configured, the system's resolv.conf; `[dns] timeout` as the lifetime of one
lookup (all tries and servers together)."""

from __future__ import annotations

import dns.asyncresolver
import dns.nameserver
import dns.resolver

from relay.config.model import DnsSettings

__all__ = ["build_resolver", "nameservers"]


def nameservers(dns_settings: DnsSettings) -> list[dns.nameserver.Nameserver]:
    """The configured name servers as dnspython objects, ports included; empty for the
    system's."""
    return [
        dns.nameserver.Do53Nameserver(server.host, server.port)
        for server in dns_settings.nameservers
    ]


def build_resolver(dns_settings: DnsSettings, *, cache: bool = True) -> dns.asyncresolver.Resolver:
    """An asyncio resolver honouring [dns]; with an LRU cache (record TTLs) unless told not."""
    resolver = dns.asyncresolver.Resolver(configure=not dns_settings.nameservers)
    if dns_settings.nameservers:
        resolver.nameservers = nameservers(dns_settings)
    resolver.lifetime = dns_settings.timeout
    if cache:
        resolver.cache = dns.resolver.LRUCache()
    return resolver
