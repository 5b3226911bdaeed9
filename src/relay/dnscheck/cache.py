"""Sender-domain readiness for the policy stage (MBP-SPF-PASS at RCPT, MBP-DKIM-ALIGNED and
MBP-DMARC-RECORD at end of data): the same checks as `relay dns-check`, cached per domain so
that a message costs no DNS round trip once its domains were checked.

A result is kept for `[dns] readiness_ttl`; a temporary failure is not kept, so the next
transaction asks again (the mailer retries after 451 4.4.3). Concurrent transactions for the
same domain share one check. The resolver's own cache honours record TTLs beneath this one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from relay.config.model import DnsSettings
from relay.dnscheck.check import check_domain
from relay.dnscheck.lookup import Lookup
from relay.dnscheck.model import Check, DomainReadiness
from relay.dnscheck.spf import check_spf
from relay.dnsresolver import build_resolver
from relay.signing.keys import KeyRing

__all__ = ["ReadinessCache"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T", Check, DomainReadiness)

# Past this many entries the expired ones are dropped (a mailer may use many From domains).
_PRUNE_AT = 10_000


class ReadinessCache:
    def __init__(
        self,
        dns: DnsSettings,
        keyring: KeyRing,
        egress: Sequence[IPAddress],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dns = dns
        self._keyring = keyring
        self._egress = tuple(egress)
        self._ttl = ttl
        self._clock = clock
        self._resolver = build_resolver(dns)
        self._kept: dict[Hashable, tuple[float, Check | DomainReadiness]] = {}
        self._asking: dict[Hashable, asyncio.Future[Check | DomainReadiness]] = {}

    async def envelope_spf(self, domain: str) -> Check:
        """The `spf` check of an envelope (MAIL FROM or VERP) domain for relay's egress
        addresses."""

        async def ask() -> Check:
            return await check_spf(domain, self._egress, Lookup(self._resolver), self._dns)

        return await self._cached(("spf", domain), ask, Check)

    async def sender(self, domain: str, envelope_domain: str) -> DomainReadiness:
        """Everything `relay dns-check DOMAIN --verp-domain ENVELOPE_DOMAIN` reports."""

        async def ask() -> DomainReadiness:
            try:
                return await check_domain(
                    domain,
                    dns=self._dns,
                    keyring=self._keyring,
                    egress=self._egress,
                    verp_domain=envelope_domain,
                    resolver=self._resolver,
                )
            except UnicodeError as exc:
                why = f"{domain!r} is not a domain name relay can sign for (IDNA: {exc})"
                return DomainReadiness(domain, envelope_domain, (Check("dkim", "fail", why),))

        return await self._cached(("sender", domain, envelope_domain), ask, DomainReadiness)

    async def _cached(self, key: Hashable, ask: Callable[[], Awaitable[T]], kind: type[T]) -> T:
        kept = self._kept.get(key)
        if kept is not None and kept[0] > self._clock():
            found = kept[1]
        else:
            task = self._asking.get(key)
            if task is None:
                task = asyncio.ensure_future(self._ask(key, ask))
                self._asking[key] = task
            # A transaction that goes away (client disconnect) leaves the check running for
            # the others waiting on it.
            found = await asyncio.shield(task)
        assert isinstance(found, kind)
        return found

    async def _ask(
        self, key: Hashable, ask: Callable[[], Awaitable[Check | DomainReadiness]]
    ) -> Check | DomainReadiness:
        try:
            found = await ask()
        finally:
            del self._asking[key]
        checks = found.checks if isinstance(found, DomainReadiness) else (found,)
        if all(check.status != "temperror" for check in checks):
            now = self._clock()
            if len(self._kept) >= _PRUNE_AT:
                self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
            self._kept[key] = (now + self._ttl, found)
        return found
