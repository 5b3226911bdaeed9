"""MTA-STS (RFC 8461): a domain's promise that its MX hosts speak TLS with valid certificates.

The TXT record `_mta-sts.<domain>` (`v=STSv1; id=...`) announces a policy; the policy itself is
fetched from `https://mta-sts.<domain>/.well-known/mta-sts.txt` with a certificate valid for that
name, without following redirects, and kept in memory for its `max_age` or until the TXT `id`
changes. A domain whose policy cannot be fetched and that has no unexpired cached policy is
treated as having none (§3.3): MTA-STS protects against downgrades, not against outages of the
policy server. dnspython and httpx errors stop here.
"""

from __future__ import annotations

import enum
import logging
import re
import ssl
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

__all__ = [
    "MtaStsResolver",
    "PolicyError",
    "PolicyMode",
    "StsPolicy",
    "mx_matches",
    "parse_policy",
]

log = logging.getLogger("relay.delivery")

_MAX_POLICY_BYTES = 64 * 1024  # RFC 8461 §3.3 suggests a limit; 64 KiB is generous
_MAX_AGE_LIMIT = 31_557_600  # §3.2: at most one year
_FETCH_TIMEOUT = 60.0  # §3.3: "a timeout of one minute"
_TXT_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


class PolicyMode(enum.Enum):
    ENFORCE = "enforce"
    TESTING = "testing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class StsPolicy:
    """A parsed policy (§3.2); `policy_id` is the TXT record's id it was fetched under."""

    mode: PolicyMode
    mx: tuple[str, ...]
    max_age: int
    policy_id: str = ""

    def allows(self, host: str) -> bool:
        return any(mx_matches(pattern, host) for pattern in self.mx)


class PolicyError(ValueError):
    """A policy or TXT record that does not follow RFC 8461, or a policy that could not be
    fetched; MtaStsResolver logs it and goes on as for a domain without a policy."""


def mx_matches(pattern: str, host: str) -> bool:
    """Whether MX `host` matches the policy's `mx` pattern (§4.1): exactly, or `*.` standing for
    one leftmost label; case-insensitive, trailing dots ignored."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return host == pattern


def parse_policy(text: str, policy_id: str = "") -> StsPolicy:
    """Parse the body of mta-sts.txt (§3.2); raise PolicyError when it is not a valid policy."""
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise PolicyError(f"line {line!r} is not key: value")
        fields.setdefault(key.strip(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise PolicyError(f"version must be STSv1, not {fields.get('version')}")
    try:
        mode = PolicyMode(fields.get("mode", [""])[0])
    except ValueError:
        raise PolicyError(f"mode must be enforce, testing or none: {fields.get('mode')}") from None
    max_age_text = fields.get("max_age", [""])[0]
    if not max_age_text.isdigit() or len(max_age_text) > 10:
        raise PolicyError(f"max_age must be a number of seconds: {max_age_text!r}")
    mx = tuple(fields.get("mx", []))
    if mode is not PolicyMode.NONE and not mx:
        raise PolicyError(f"a policy in mode {mode.value} must name at least one mx")
    return StsPolicy(mode, mx, min(int(max_age_text), _MAX_AGE_LIMIT), policy_id)


def _txt_id(strings: list[str]) -> str | None:
    """The id of an STSv1 TXT record, or None when the record is not one (§3.1)."""
    record = "".join(strings)
    if not record.startswith("v=STSv1;"):
        return None
    for field in record.split(";")[1:]:
        key, _, value = field.strip().partition("=")
        if key == "id" and _TXT_ID.match(value):
            return value
    raise PolicyError(f"TXT record {record!r} has no valid id")


@dataclass(slots=True)
class _Cached:
    policy: StsPolicy
    expires_at: float


class MtaStsResolver:
    """The MTA-STS policy of each destination domain, cached in memory."""

    def __init__(
        self, resolver: dns.asyncresolver.Resolver, tls: ssl.SSLContext, port: int = 443
    ) -> None:
        self._resolver = resolver
        self._tls = tls
        self._port = port
        self._cache: dict[str, _Cached] = {}

    async def policy(self, domain: str) -> StsPolicy | None:
        """The policy in force for `domain`, or None when it has none (or mode none)."""
        now = time.time()
        cached = self._cache.get(domain)
        if cached is not None and cached.expires_at <= now:
            del self._cache[domain]
            cached = None
        try:
            policy_id = await self._announced_id(domain)
        except PolicyError as exc:
            log.warning("MTA-STS %s: %s", domain, exc)
            policy_id = None
        if policy_id is not None and (cached is None or cached.policy.policy_id != policy_id):
            try:
                fetched = parse_policy(await self._fetch(domain), policy_id)
            except PolicyError as exc:
                log.warning("MTA-STS %s: no usable policy: %s", domain, exc)
            else:
                log.info(
                    "MTA-STS %s: policy id %s, mode %s, mx %s, max_age %ss",
                    domain,
                    policy_id,
                    fetched.mode.value,
                    ",".join(fetched.mx),
                    fetched.max_age,
                )
                cached = _Cached(fetched, now + fetched.max_age)
                self._cache[domain] = cached
        if cached is None or cached.policy.mode is PolicyMode.NONE:
            return None
        return cached.policy

    async def _announced_id(self, domain: str) -> str | None:
        try:
            answer = await self._resolver.resolve(f"_mta-sts.{domain}", "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.exception.DNSException as exc:
            raise PolicyError(f"TXT lookup of _mta-sts.{domain} failed: {exc}") from None
        ids = {
            policy_id
            for record in answer
            if (policy_id := _txt_id([s.decode("ascii", "replace") for s in record.strings]))
        }
        if len(ids) > 1:
            raise PolicyError(f"_mta-sts.{domain} has several STSv1 TXT records")
        return ids.pop() if ids else None

    async def _fetch(self, domain: str) -> str:
        """GET the policy from each address of mta-sts.<domain> in turn (relay's resolver, so
        that [dns] applies); the certificate must be valid for mta-sts.<domain> (§3.3)."""
        host = f"mta-sts.{domain}"
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self._resolver.resolve(host, rdtype, search=False)
            except dns.exception.DNSException:
                continue
            addresses.extend(
                f"[{r.to_text()}]" if ":" in r.to_text() else r.to_text() for r in answer
            )
        if not addresses:
            raise PolicyError(f"{host} has no address")
        problems: list[str] = []
        async with httpx.AsyncClient(
            verify=self._tls, follow_redirects=False, timeout=_FETCH_TIMEOUT
        ) as client:
            for address in addresses:
                url = f"https://{address}:{self._port}/.well-known/mta-sts.txt"
                try:
                    response = await client.get(
                        url, headers={"Host": host}, extensions={"sni_hostname": host}
                    )
                except httpx.HTTPError as exc:
                    problems.append(f"{url}: {exc}")
                    continue
                if response.status_code != 200:
                    raise PolicyError(f"https://{host}/ answered HTTP {response.status_code}")
                if response.headers.get("content-type", "").split(";")[0].strip() != "text/plain":
                    raise PolicyError(f"https://{host}/ did not serve text/plain")
                if len(response.content) > _MAX_POLICY_BYTES:
                    raise PolicyError(f"https://{host}/ served more than {_MAX_POLICY_BYTES} bytes")
                return response.content.decode("utf-8", "replace")
        raise PolicyError(f"fetching the policy failed: {'; '.join(problems)}")
