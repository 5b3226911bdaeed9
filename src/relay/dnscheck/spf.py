"""Does the envelope domain's SPF record authorise relay's egress addresses?

relay evaluates RFC 7208 check_host() for each address itself, asking DNS through `Lookup`
(so that a temporary failure stays a temperror), and then hands the record to checkdmarc's
parser for the syntax and lookup-limit verdict and its advice (see relay.dnscheck).

Evaluated: ip4, ip6, a, mx, include, exists, all, and redirect= (ignored when all is present),
with the limits of RFC 7208 §4.6.4: 10 terms that cause DNS lookups, 2 void lookups, 10 MX
hosts per mx. Not evaluated (result "unknown"): terms with macros (they depend on the sender
and the message) and ptr (RFC 7208 §5.5: SHOULD NOT be used); only reached if no earlier term
matched.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from relay.config.model import DnsSettings
from relay.dnscheck.lookup import Lookup
from relay.dnscheck.model import Answer, Check, Status
from relay.dnscheck.validation import validate_spf

__all__ = ["SpfResult", "check_spf", "spf_records"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
SpfResult = Literal[
    "pass", "fail", "softfail", "neutral", "none", "permerror", "temperror", "unknown"
]

MAX_LOOKUPS = 10
MAX_VOID_LOOKUPS = 2
MAX_MX_HOSTS = 10

_QUALIFIERS: dict[str, SpfResult] = {
    "": "pass",
    "+": "pass",
    "-": "fail",
    "~": "softfail",
    "?": "neutral",
}
_MODIFIER = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", re.S)
_MECHANISM = re.compile(r"([+\-~?]?)([A-Za-z][A-Za-z0-9_.-]*)(.*)", re.S)
_DOMAIN_CIDR = re.compile(r"(?::([^/]+))?(?:/(\d{1,2}))?(?://(\d{1,3}))?")
_VERSION = re.compile(r"v=spf1(?: |$)", re.I)


def spf_records(texts: Sequence[str]) -> list[str]:
    """The TXT records that are SPF records (RFC 7208 §4.5: exactly v=spf1, then SP or end)."""
    return [text for text in texts if _VERSION.match(text)]


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


class _Unevaluable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Term:
    qualifier: str
    name: str
    text: str  # as written, for reports
    target: str | None = None  # domain-spec of a, mx, include, exists, ptr
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None  # ip4, ip6
    cidr4: int = 32
    cidr6: int = 128


@dataclass(frozen=True, slots=True)
class _Parsed:
    terms: tuple[_Term, ...]
    redirect: str | None


def _parse(record: str) -> _Parsed:
    terms: list[_Term] = []
    redirect: str | None = None
    for text in record.split()[1:]:
        modifier = _MODIFIER.fullmatch(text)
        if modifier:
            name, value = modifier.group(1).lower(), modifier.group(2)
            if name == "redirect":
                if redirect is not None:
                    raise _PermError("more than one redirect= modifier")
                redirect = value
            continue  # exp= and unknown modifiers do not decide anything (RFC 7208 §6)
        mechanism = _MECHANISM.fullmatch(text)
        if not mechanism:
            raise _PermError(f"{text!r} is not an SPF term")
        qualifier, name, rest = mechanism.group(1), mechanism.group(2).lower(), mechanism.group(3)
        terms.append(_term(qualifier, name, rest, text))
    return _Parsed(tuple(terms), redirect)


def _term(qualifier: str, name: str, rest: str, text: str) -> _Term:
    if name == "all":
        if rest:
            raise _PermError(f"{text!r}: all takes no value")
        return _Term(qualifier, name, text)
    if name in ("ip4", "ip6"):
        if not rest.startswith(":"):
            raise _PermError(f"{text!r}: {name} needs an address")
        try:
            network = ipaddress.ip_network(rest[1:], strict=False)
        except ValueError:
            raise _PermError(f"{text!r}: not a valid {name} network") from None
        if network.version != (4 if name == "ip4" else 6):
            raise _PermError(f"{text!r}: not an IPv{name[-1]} network")
        return _Term(qualifier, name, text, network=network)
    if name in ("a", "mx", "include", "exists", "ptr"):
        match = _DOMAIN_CIDR.fullmatch(rest)
        if not match:
            raise _PermError(f"{text!r}: bad domain or prefix length")
        target, cidr4, cidr6 = match.groups()
        if name in ("include", "exists") and (not target or cidr4 or cidr6):
            raise _PermError(f"{text!r}: {name} needs a domain and takes no prefix length")
        if (cidr4 or cidr6) and name == "ptr":
            raise _PermError(f"{text!r}: ptr takes no prefix length")
        four, six = int(cidr4 or 32), int(cidr6 or 128)
        if four > 32 or six > 128:
            raise _PermError(f"{text!r}: prefix length too long")
        return _Term(qualifier, name, text, target=target, cidr4=four, cidr6=six)
    raise _PermError(f"{text!r}: unknown mechanism {name!r}")


@dataclass
class _Evaluation:
    """One check_host() run for one address, counting lookups across include and redirect."""

    lookup: Lookup
    ip: IPAddress
    lookups: int = 0
    voids: int = 0
    answers: list[Answer] = field(default_factory=list)

    async def ask(self, name: str, rdtype: str) -> Answer:
        answer = await self.lookup(name, rdtype)
        self.answers.append(answer)
        if answer.temporary:
            raise _TempError(f"{rdtype} {name}: {answer.error}")
        return answer

    def count(self) -> None:
        self.lookups += 1
        if self.lookups > MAX_LOOKUPS:
            raise _PermError(f"more than {MAX_LOOKUPS} DNS-querying terms (RFC 7208 §4.6.4)")

    def void(self, answer: Answer) -> None:
        if answer.error is not None or not answer.records:
            self.voids += 1
            if self.voids > MAX_VOID_LOOKUPS:
                raise _PermError(f"more than {MAX_VOID_LOOKUPS} void lookups (RFC 7208 §4.6.4)")

    async def record(self, domain: str) -> str | None:
        answer = await self.ask(domain, "TXT")
        records = spf_records(answer.records)
        if len(records) > 1:
            raise _PermError(f"{domain} has {len(records)} SPF records")
        return records[0] if records else None

    async def check_host(self, domain: str) -> tuple[SpfResult, str]:
        """The result and why, e.g. ("pass", "ip4:192.0.2.0/24 in shop.example")."""
        record = await self.record(domain)
        if record is None:
            return "none", f"{domain} has no SPF record"
        parsed = _parse(record)
        for term in parsed.terms:
            included = await self.matches(term, domain)
            if included is not None:
                return _QUALIFIERS[term.qualifier], f"{included}{term.text} in {domain}"
        if parsed.redirect is not None and not any(t.name == "all" for t in parsed.terms):
            if "%" in parsed.redirect:
                raise _Unevaluable(f"redirect={parsed.redirect} uses macros")
            self.count()
            result, why = await self.check_host(parsed.redirect)
            if result == "none":
                raise _PermError(f"redirect target {parsed.redirect} has no SPF record")
            return result, f"{why} (redirect from {domain})"
        return "neutral", f"no term of {domain} matched"

    async def matches(self, term: _Term, domain: str) -> str | None:
        """A prefix for the reason when the term matches (mostly ""), None when it does not."""
        if term.target is not None and "%" in term.target:
            raise _Unevaluable(f"{term.text} uses macros, which depend on the message")
        target = term.target or domain
        if term.name == "all":
            return ""
        if term.name in ("ip4", "ip6"):
            assert term.network is not None
            return "" if self.ip in term.network else None
        if term.name == "a":
            self.count()
            return "" if await self.address_matches(target, term, void=True) else None
        if term.name == "mx":
            return "" if await self.mx_matches(target, term) else None
        if term.name == "include":
            self.count()
            result, why = await self.check_host(target)
            if result == "pass":
                return f"{why} via "
            if result in ("fail", "softfail", "neutral"):
                return None
            if result == "none":
                raise _PermError(f"include target {target} has no SPF record")
            raise _PermError(f"include:{target}: {why}")
        if term.name == "exists":
            self.count()
            answer = await self.ask(target, "A")
            self.void(answer)
            return "" if answer.records else None
        self.count()  # ptr
        raise _Unevaluable(f"{term.text} is not evaluated (RFC 7208 §5.5: SHOULD NOT be used)")

    async def address_matches(self, name: str, term: _Term, *, void: bool) -> bool:
        rdtype = "A" if self.ip.version == 4 else "AAAA"
        answer = await self.ask(name, rdtype)
        if void:
            self.void(answer)
        prefix = term.cidr4 if self.ip.version == 4 else term.cidr6
        for text in answer.records:
            if self.ip in ipaddress.ip_network(f"{text}/{prefix}", strict=False):
                return True
        return False

    async def mx_matches(self, name: str, term: _Term) -> bool:
        self.count()
        answer = await self.ask(name, "MX")
        self.void(answer)
        hosts = [text.split()[1].rstrip(".") for text in answer.records]
        hosts = [host for host in hosts if host]  # a null MX names no host
        if len(hosts) > MAX_MX_HOSTS:
            raise _PermError(f"{name} has more than {MAX_MX_HOSTS} MX hosts (RFC 7208 §4.6.4)")
        for host in hosts:
            if await self.address_matches(host, term, void=False):
                return True
        return False


async def evaluate(
    lookup: Lookup, ip: IPAddress, domain: str
) -> tuple[SpfResult, str, list[Answer]]:
    """check_host(ip, domain) with `lookup`: the result, why, and the answers it read."""
    evaluation = _Evaluation(lookup, ip)
    try:
        result, why = await evaluation.check_host(domain)
    except _TempError as exc:
        return "temperror", str(exc), evaluation.answers
    except _PermError as exc:
        return "permerror", str(exc), evaluation.answers
    except _Unevaluable as exc:
        return "unknown", str(exc), evaluation.answers
    return result, why, evaluation.answers


async def check_spf(
    domain: str, egress: Sequence[IPAddress], lookup: Lookup, dns_settings: DnsSettings
) -> Check:
    """The `spf` check of the envelope domain: pass when every egress address gets SPF pass."""
    top = await lookup(domain, "TXT")
    if top.temporary:
        return Check("spf", "temperror", f"TXT {domain}: {top.error}", (top,))
    records = spf_records(top.records)
    if not records:
        return Check("spf", "missing", f"{domain} publishes no SPF record", (top,))
    if len(records) > 1:
        return Check(
            "spf",
            "fail",
            f"{domain} has {len(records)} SPF records (RFC 7208 §4.5: permerror)",
            (top,),
        )
    record = records[0]
    if not egress:
        return Check(
            "spf",
            "unknown",
            f"no egress addresses configured ([delivery] egress_addresses); {domain}: {record}",
            (top,),
        )
    outcomes = await asyncio.gather(*(evaluate(lookup, ip, domain) for ip in egress))
    answers = _unique([top, *(answer for *_, read in outcomes for answer in read)])
    results = {result for result, _, _ in outcomes}
    if results <= {"pass", "temperror", "unknown"} and "temperror" in results:
        why = next(why for result, why, _ in outcomes if result == "temperror")
        return Check("spf", "temperror", f"DNS failed while evaluating {record}: {why}", answers)
    syntax_error, warnings = await validate_spf(record, domain, dns_settings)
    if syntax_error is not None and results == {"pass"}:
        # relay's evaluation passed, but checkdmarc finds the record invalid: receivers that
        # parse the whole record first return permerror.
        detail = f"permerror (checkdmarc: {syntax_error}): {record}"
        return Check("spf", "fail", detail, answers, warnings)
    if syntax_error is not None:
        warnings = (f"checkdmarc: {syntax_error}", *warnings)
    if results == {"pass"}:
        ips = ", ".join(str(ip) for ip in egress)
        return Check("spf", "pass", f"{ips} authorised by {record}", answers, warnings)
    # Any address that SPF does not pass (fail, softfail, neutral, permerror) makes the domain
    # not ready; "unknown" is left for records relay cannot evaluate without a message.
    status: Status = "unknown" if results <= {"pass", "unknown"} else "fail"
    problems = "; ".join(
        f"{ip} {result} ({why})"
        for ip, (result, why, _) in zip(egress, outcomes, strict=True)
        if result != "pass"
    )
    return Check("spf", status, f"{problems}: {record}", answers, warnings)


def _unique(answers: list[Answer]) -> tuple[Answer, ...]:
    seen: dict[tuple[str, str], Answer] = {}
    for answer in answers:
        seen.setdefault((answer.name, answer.rdtype), answer)
    return tuple(seen.values())
