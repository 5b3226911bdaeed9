"""Where mail for a domain goes: the transport map, then MX records (RFC 5321 §5.1), with the
implicit MX (A/AAAA) fallback and null MX (RFC 7505). dnspython errors stop here."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

import dns.exception
import dns.resolver

from relay.config.model import DeliverySettings, DnsSettings
from relay.config.types import Route
from relay.dnsresolver import build_resolver
from relay.errors import PermanentFailure, TemporaryFailure

__all__ = ["Destination", "MailHost", "MxResolver"]


@dataclass(frozen=True, slots=True)
class MailHost:
    name: str
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.name}[{self.address}]:{self.port}"


@dataclass(frozen=True, slots=True)
class Destination:
    """The hosts to try, in order, for one domain."""

    domain: str
    hosts: tuple[MailHost, ...]
    routed: bool = False  # hosts from the transport map, not the domain's MX records


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class MxResolver:
    def __init__(self, dns_settings: DnsSettings, delivery: DeliverySettings) -> None:
        self._routes = delivery.routes
        self._port = delivery.port
        self._resolver = build_resolver(dns_settings)

    async def destination(self, domain: str) -> Destination:
        """Raise PermanentFailure when the domain can never receive mail, TemporaryFailure when
        DNS could not answer now."""
        domain = domain.lower().rstrip(".")
        route = self._routes.get(domain) or self._routes.get("*")
        if route is not None:
            return Destination(domain, await self._route_hosts(route), routed=True)
        return Destination(domain, await self._mx_hosts(domain, self._port))

    async def _route_hosts(self, route: Route) -> tuple[MailHost, ...]:
        port = route.port or self._port
        if route.mx_lookup:
            return await self._mx_hosts(route.host, port)
        hosts = await self._addresses(route.host, port)
        if not hosts:
            raise TemporaryFailure("4.4.4", f"route host {route.host} has no address")
        return hosts

    async def _mx_hosts(self, domain: str, port: int) -> tuple[MailHost, ...]:
        try:
            answer = await self._resolver.resolve(domain, "MX", search=False)
        except dns.resolver.NXDOMAIN:
            raise PermanentFailure(
                "5.1.2", f"domain {domain} does not exist (DNS NXDOMAIN)"
            ) from None
        except dns.resolver.NoAnswer:
            implicit = await self._addresses(domain, port)
            if not implicit:
                raise PermanentFailure(
                    "5.1.2", f"domain {domain} has no MX, A or AAAA record"
                ) from None
            return implicit
        except dns.exception.DNSException as exc:
            raise TemporaryFailure("4.4.3", f"DNS lookup of MX {domain} failed: {exc}") from None
        records = [record for record in answer if record.exchange.to_text() != "."]
        if not records:
            raise PermanentFailure(
                "5.1.10", f"domain {domain} has a null MX (RFC 7505) and accepts no mail"
            )
        random.shuffle(records)
        records.sort(key=lambda record: record.preference)
        hosts: list[MailHost] = []
        for record in records:
            name = record.exchange.to_text(omit_final_dot=True)
            hosts.extend(await self._addresses(name, port))
        if not hosts:
            raise TemporaryFailure("4.4.4", f"no MX host of {domain} has an address")
        return tuple(hosts)

    async def _addresses(self, name: str, port: int) -> tuple[MailHost, ...]:
        if _is_ip(name):
            return (MailHost(name, name, port),)
        hosts: list[MailHost] = []
        failure: str | None = None
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(name, rdtype, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except dns.exception.DNSException as exc:
                failure = f"DNS lookup of {rdtype} {name} failed: {exc}"
                continue
            hosts.extend(MailHost(name, record.to_text(), port) for record in answer)
        if not hosts and failure:
            raise TemporaryFailure("4.4.3", failure)
        return tuple(hosts)
