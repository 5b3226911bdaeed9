"""How much TLS a destination gets: opportunistic STARTTLS, or STARTTLS with a certificate valid
for the host's name because `[delivery] tls` says "required" or the domain's MTA-STS policy is
`enforce` (then only the MX hosts the policy names are tried).

A destination that demands TLS is never delivered to in plaintext: the failure is temporary
(status 4.7.10), retried until max_lifetime, and the expiry DSN says 5.7.10.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

from relay.config.model import DeliverySettings, DnsSettings
from relay.delivery.mta_sts import MtaStsResolver, PolicyMode
from relay.delivery.mx import Destination, MailHost
from relay.dnsresolver import build_resolver
from relay.errors import TemporaryFailure

__all__ = ["TLS_NEEDED", "TlsPlan", "TlsPolicy", "verifying_context"]

log = logging.getLogger("relay.delivery")

# RFC 3463 X.7.10 "Encryption needed" (RFC 5248 registry): the attempt status of a TLS failure.
TLS_NEEDED = "4.7.10"


def verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that checks the certificate chain against `ca_file` (default: the
    system's trust store) and the name of the host."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass(frozen=True, slots=True)
class TlsPlan:
    """The hosts to try for a destination and, when TLS is mandatory, who demands it."""

    hosts: tuple[MailHost, ...]
    required_by: str | None = None  # e.g. "the MTA-STS policy of example.com"


class TlsPolicy:
    def __init__(self, dns_settings: DnsSettings, delivery: DeliverySettings) -> None:
        self._tls = delivery.tls
        self._mta_sts = MtaStsResolver(
            build_resolver(dns_settings),
            verifying_context(delivery.ca_file),
            delivery.mta_sts_port,
        )

    async def plan(self, destination: Destination) -> TlsPlan:
        """Raise TemporaryFailure when an enforced MTA-STS policy names none of the MX hosts."""
        domain = destination.domain
        configured = self._tls.get(domain) or self._tls.get("*")
        required_by = f"[delivery] tls of {domain}" if configured == "required" else None
        if destination.routed:
            return TlsPlan(destination.hosts, required_by)  # MTA-STS speaks of MX hosts only
        policy = await self._mta_sts.policy(domain)
        if policy is None:
            return TlsPlan(destination.hosts, required_by)
        named = tuple(host for host in destination.hosts if policy.allows(host.name))
        if policy.mode is PolicyMode.TESTING:
            for host in destination.hosts:
                if host not in named:
                    log.warning(
                        "MTA-STS %s (testing): MX %s is not named by the policy (mx %s)",
                        domain,
                        host.name,
                        ",".join(policy.mx),
                    )
            return TlsPlan(destination.hosts, required_by)
        if not named:
            raise TemporaryFailure(
                TLS_NEEDED,
                f"no MX host of {domain} is named by its MTA-STS policy"
                f" (mx {', '.join(policy.mx)})",
            )
        return TlsPlan(named, f"the MTA-STS policy of {domain}")
