"""Is the DKIM key record published at SELECTOR._domainkey.DOMAIN the one for relay's key?

The published record must be a DKIM key record (v=DKIM1 when v= is given, RFC 6376 §3.6.1),
of the key's type (k=, default rsa) and carry the same public key (p=, whitespace ignored). An
empty p= is a revoked key.
"""

from __future__ import annotations

from relay.dnscheck.lookup import Lookup
from relay.dnscheck.model import Check
from relay.signing.keys import SigningKey

__all__ = ["check_dkim_key", "check_name", "parse_tags"]


def parse_tags(record: str) -> dict[str, str]:
    """tag=value; list (RFC 6376 §3.2) with folding whitespace removed from the values; the
    first occurrence of a tag wins (a duplicate makes the record invalid, checked by callers)."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if not sep:
            continue
        tags.setdefault(name.strip().lower(), "".join(value.split()))
    return tags


def check_name(key: SigningKey, domain: str) -> str:
    return f"dkim:{key.selector}" if key.domain == domain else f"dkim:{key.selector}@{key.domain}"


async def check_dkim_key(key: SigningKey, domain: str, lookup: Lookup) -> Check:
    name = check_name(key, domain)
    answer = await lookup(key.record_name, "TXT")
    where = f"TXT {key.record_name}"
    if answer.temporary:
        return Check(name, "temperror", f"{where}: {answer.error}", (answer,))
    candidates = [record for record in answer.records if _looks_like_key(record)]
    if not candidates:
        why = "does not exist" if answer.error else "holds no DKIM key record"
        return Check(name, "missing", f"{where} {why}; publish: {key.record_value}", (answer,))
    if len(candidates) > 1:
        return Check(
            name,
            "fail",
            f"{where} has {len(candidates)} key records; publish exactly one",
            (answer,),
        )
    published = parse_tags(candidates[0])
    expected = parse_tags(key.record_value)
    problem = _mismatch(published, expected)
    if problem:
        return Check(name, "fail", f"{where}: {problem}", (answer,))
    return Check(
        name,
        "pass",
        f"{where} publishes the {key.algorithm} key of {key.path or 'the keyring'}",
        (answer,),
    )


def _looks_like_key(record: str) -> bool:
    tags = parse_tags(record)
    return "p" in tags or tags.get("v", "").upper() == "DKIM1"


def _mismatch(published: dict[str, str], expected: dict[str, str]) -> str | None:
    version = published.get("v")
    if version is not None and version != "DKIM1":
        return f"v={version}, not DKIM1"
    key_type = published.get("k", "rsa").lower()
    if key_type != expected["k"]:
        return f"k={key_type}, but the configured key is {expected['k']}"
    public_key = published.get("p")
    if public_key is None:
        return "no p= tag"
    if public_key == "":
        return "p= is empty: the key is revoked (RFC 6376 §3.6.1)"
    if public_key != expected["p"]:
        return "p= is a different public key than the configured private key's"
    return None
