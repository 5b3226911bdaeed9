"""DNS questions for one readiness check: asked once each, answered as `Answer`s.

Every dnspython error stops here and becomes one of three outcomes: NXDOMAIN, NODATA (the name
exists without records of the type) or a temporary failure (SERVFAIL, REFUSED, timeout,
network error). Only the first two ever mean "missing".
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.rrset

from relay.dnscheck.model import Answer

__all__ = ["NODATA", "NXDOMAIN", "Lookup"]

NXDOMAIN = "NXDOMAIN"
NODATA = "NODATA"


class Lookup:
    """Memoised lookups through one resolver (concurrent askers of a name share one query)."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self._resolver = resolver
        self._asked: dict[tuple[str, str], asyncio.Task[Answer]] = {}

    async def __call__(self, name: str, rdtype: str) -> Answer:
        key = (name.lower().rstrip("."), rdtype.upper())
        task = self._asked.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ask(*key))
            self._asked[key] = task
        return await task

    async def _ask(self, name: str, rdtype: str) -> Answer:
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            return Answer(name, rdtype, error=f"not a domain name: {exc}")
        try:
            answer = await self._resolver.resolve(qname, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Answer(name, rdtype, error=NXDOMAIN)
        except dns.resolver.NoAnswer:
            return Answer(name, rdtype, error=NODATA)
        except dns.exception.DNSException as exc:
            return Answer(name, rdtype, error=str(exc) or type(exc).__name__, temporary=True)
        except OSError as exc:
            return Answer(name, rdtype, error=f"network error: {exc}", temporary=True)
        rrset = answer.rrset
        return Answer(name, rdtype, _texts(rrset) if rrset is not None else ())


def _texts(rrset: dns.rrset.RRset) -> tuple[str, ...]:
    if rrset.rdtype == dns.rdatatype.TXT:
        # The character-strings of one TXT record are joined without separator (RFC 7208 §3.3,
        # RFC 6376 §3.6.2.2, RFC 7489 §6.6.3).
        return tuple(b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in rrset)
    return tuple(rdata.to_text() for rdata in rrset)
