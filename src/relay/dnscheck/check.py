"""check_domain(): every readiness item of one sender domain, asked concurrently."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

from dns.asyncresolver import Resolver as AsyncResolver

from relay.config.model import DnsSettings
from relay.dnscheck.dkim import check_dkim_key, check_name
from relay.dnscheck.dmarc import DmarcWalk, aligned, check_dmarc, walk
from relay.dnscheck.lookup import NXDOMAIN, Lookup
from relay.dnscheck.model import Check, DmarcPolicy, DomainReadiness, Status
from relay.dnscheck.spf import check_spf
from relay.dnsresolver import build_resolver
from relay.signing.keys import KeyRing, SigningKey, normalise_domain

__all__ = ["check_domain", "check_mx", "signing_keys"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


async def check_domain(
    domain: str,
    *,
    dns: DnsSettings,
    keyring: KeyRing,
    egress: Sequence[IPAddress],
    verp_domain: str | None = None,
    resolver: AsyncResolver | None = None,
) -> DomainReadiness:
    """Check DOMAIN (the From domain) as a sender through relay.

    mx and spf are about the envelope domain (`verp_domain`, else DOMAIN): it must be able to
    receive bounces (MX or implicit MX, not a null MX) and its SPF must authorise every egress
    address. dkim:<selector> compares the published key record of each key relay would sign
    DOMAIN's mail with (keys of DOMAIN, else of its nearest parent that has keys) with the key.
    dmarc: a record with p= applies to DOMAIN. alignment: that d= and the envelope domain align
    with DOMAIN per adkim and aspf.

    Raises UnicodeError for a name IDNA cannot encode. `resolver` reuses a caller's resolver
    (and its cache); by default one is built from `dns`.
    """
    domain = normalise_domain(domain)
    envelope = normalise_domain(verp_domain) if verp_domain else domain
    lookup = Lookup(resolver or build_resolver(dns))
    signing_domain, keys = signing_keys(keyring, domain)

    async def dkim_checks() -> list[Check]:
        if not keys:
            return [
                Check(
                    "dkim",
                    "missing",
                    f"no [[dkim.keys]] entry for {domain} or a parent domain: relay cannot"
                    " sign its mail",
                )
            ]
        return list(await asyncio.gather(*(check_dkim_key(key, domain, lookup) for key in keys)))

    mx, spf, dkim, (dmarc, policy, author_walk) = await asyncio.gather(
        check_mx(envelope, lookup),
        check_spf(envelope, egress, lookup, dns),
        dkim_checks(),
        check_dmarc(domain, lookup, dns),
    )
    alignment, dkim_aligned, spf_aligned = await _alignment(
        domain, envelope, signing_domain, dmarc, policy, author_walk, lookup
    )
    return DomainReadiness(
        domain=domain,
        envelope_domain=envelope,
        checks=(mx, spf, *dkim, dmarc, alignment),
        dmarc=policy,
        dkim_domain=signing_domain,
        active_dkim=tuple(check_name(key, domain) for key in keyring.for_domain(domain)),
        dkim_aligned=dkim_aligned,
        spf_aligned=spf_aligned,
    )


def signing_keys(keyring: KeyRing, domain: str) -> tuple[str | None, list[SigningKey]]:
    """The d= relay signs DOMAIN's mail with (KeyRing.signing_domain) and every configured key
    of that d=, rotated-out selectors included: their records stay published while signed mail
    may still be in flight."""
    name = keyring.signing_domain(domain)
    return name, [key for key in keyring.keys if key.domain == name]


async def check_mx(domain: str, lookup: Lookup) -> Check:
    """The envelope domain can receive bounces: MX hosts, or an implicit MX (A/AAAA); a null MX
    (RFC 7505) or a domain that does not exist fails."""
    answer = await lookup(domain, "MX")
    if answer.temporary:
        return Check("mx", "temperror", f"MX {domain}: {answer.error}", (answer,))
    if answer.error == NXDOMAIN:
        return Check(
            "mx",
            "fail",
            f"{domain} does not exist (NXDOMAIN): bounces cannot reach it",
            (answer,),
        )
    if answer.records:
        exchanges = [record.split()[-1] for record in answer.records]
        if "." in exchanges:
            if len(exchanges) == 1:
                why = f"{domain} has a null MX (RFC 7505): it accepts no mail, not even bounces"
            else:
                why = f"{domain} mixes a null MX with other MX records (RFC 7505 §3)"
            return Check("mx", "fail", why, (answer,))
        return Check("mx", "pass", f"MX {', '.join(sorted(answer.records))}", (answer,))
    addresses = await asyncio.gather(lookup(domain, "A"), lookup(domain, "AAAA"))
    found = [record for address in addresses for record in address.records]
    answers = (answer, *addresses)
    if found:
        return Check("mx", "pass", f"no MX; implicit MX {', '.join(found)}", answers)
    failed = next((address for address in addresses if address.temporary), None)
    if failed is not None:
        return Check("mx", "temperror", f"{failed.rdtype} {domain}: {failed.error}", answers)
    return Check(
        "mx", "missing", f"{domain} has no MX, A or AAAA record: bounces cannot reach it", answers
    )


async def _alignment(
    domain: str,
    envelope: str,
    signing_domain: str | None,
    dmarc: Check,
    policy: DmarcPolicy | None,
    author_walk: DmarcWalk,
    lookup: Lookup,
) -> tuple[Check, bool | None, bool | None]:
    if dmarc.status == "temperror":
        return (
            Check("alignment", "temperror", f"needs the DMARC record: {dmarc.detail}"),
            None,
            None,
        )
    adkim = policy.adkim if policy else "r"
    aspf = policy.aspf if policy else "r"
    author_org = author_walk.organisational_domain
    others = sorted({name for name in (signing_domain, envelope) if name and name != domain})
    walks = {name: await walk(name, lookup) for name in others}
    answers = tuple(answer for found in walks.values() for answer in found.answers)
    failed = next((found.temporary for found in walks.values() if found.temporary), None)
    if failed is not None:
        return (
            Check("alignment", "temperror", f"TXT {failed.name}: {failed.error}", answers),
            None,
            None,
        )

    def org(name: str) -> str:
        return author_org if name == domain else walks[name].organisational_domain

    spf_aligned = aligned(envelope, org(envelope), domain, author_org, aspf)
    spf_text = f"envelope {envelope} {'aligned' if spf_aligned else 'not aligned'} (aspf={aspf})"
    defaults = "" if policy else "; no usable DMARC record, relaxed defaults"
    if signing_domain is None:
        detail = f"no DKIM key for {domain} or a parent domain, so no aligned d=; {spf_text}"
        return Check("alignment", "fail", detail + defaults, answers), False, spf_aligned
    dkim_aligned = aligned(signing_domain, org(signing_domain), domain, author_org, adkim)
    dkim_text = (
        f"d={signing_domain} {'aligned' if dkim_aligned else 'not aligned'} with From {domain}"
        f" (adkim={adkim}" + ("" if adkim == "s" else f", organisational domain {author_org}") + ")"
    )
    status: Status = "pass" if dkim_aligned and spf_aligned else "fail"
    return (
        Check("alignment", status, f"{dkim_text}; {spf_text}{defaults}", answers),
        dkim_aligned,
        spf_aligned,
    )
