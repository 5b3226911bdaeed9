"""DMARC: the record that applies to a domain and its organisational domain, found by the DNS
tree walk of RFC 9989 §4.10 (which replaces RFC 7489's Public Suffix List), and identifier
alignment (RFC 9989 §4.4).

The walk queries _dmarc.<domain>, then _dmarc of each parent (a name of more than 8 labels
jumps to its last 7), stopping before the top-level domain: relay does not look for public
suffix domain (psd=y) records at TLDs. The policy record is the first found. The
organisational domain is the first domain along the walk whose record says psd=n, else the
one below the first psd=y record, else the shortest domain with a record; for a domain under
no record at all, checkdmarc's Public Suffix List guess.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, cast

import checkdmarc.utils

from relay.config.model import DnsSettings
from relay.dnscheck.lookup import Lookup
from relay.dnscheck.model import Answer, Check, DmarcPolicy
from relay.dnscheck.validation import parse_dmarc

__all__ = ["DmarcWalk", "aligned", "check_dmarc", "walk", "walk_names"]

MAX_WALK_LABELS = 8


def walk_names(domain: str) -> list[str]:
    """The names whose _dmarc record the tree walk asks for, longest first, without the TLD."""
    labels = domain.split(".")
    names = [domain]
    if len(labels) > MAX_WALK_LABELS:
        labels = labels[-(MAX_WALK_LABELS - 1) :]
        names.append(".".join(labels))
    while len(labels) > 2:
        labels = labels[1:]
        names.append(".".join(labels))
    return names


def _dmarc_records(answer: Answer) -> list[str]:
    return [text for text in answer.records if text.strip().lower().startswith("v=dmarc1")]


def _psd(record: str) -> str:
    for part in record.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "psd":
            return value.strip().lower()
    return "u"


@dataclass(frozen=True, slots=True)
class DmarcWalk:
    domain: str
    answers: tuple[Answer, ...]
    found: tuple[tuple[str, str], ...]  # (domain, record), longest domain first
    temporary: Answer | None  # the first lookup that failed temporarily
    duplicate: str | None  # a domain with more than one DMARC record

    @property
    def policy(self) -> tuple[str, str] | None:
        return self.found[0] if self.found else None

    @property
    def organisational_domain(self) -> str:
        for name, record in self.found:
            psd = _psd(record)
            if psd == "n":
                return name
            if psd == "y":
                below = self.domain.split(".")[-(len(name.split(".")) + 1) :]
                return ".".join(below)
        if self.found:
            return self.found[-1][0]
        return str(checkdmarc.utils.get_base_domain(self.domain))


async def walk(domain: str, lookup: Lookup) -> DmarcWalk:
    names = walk_names(domain)
    answers = await asyncio.gather(*(lookup(f"_dmarc.{name}", "TXT") for name in names))
    found: list[tuple[str, str]] = []
    temporary: Answer | None = None
    duplicate: str | None = None
    for name, answer in zip(names, answers, strict=True):
        if answer.temporary:
            temporary = temporary or answer
            continue
        records = _dmarc_records(answer)
        if len(records) > 1:
            duplicate = duplicate or name
        if len(records) == 1:
            found.append((name, records[0]))
    return DmarcWalk(domain, tuple(answers), tuple(found), temporary, duplicate)


async def check_dmarc(
    domain: str, lookup: Lookup, dns_settings: DnsSettings
) -> tuple[Check, DmarcPolicy | None, DmarcWalk]:
    """The `dmarc` check: a DMARC record with an explicit p= applies to DOMAIN."""
    found = await walk(domain, lookup)
    answers = found.answers
    policy = found.policy
    if found.temporary is not None:
        # A name the walk could not read may hold the policy or decide the organisational
        # domain: nothing to say until DNS answers.
        failed = found.temporary
        check = Check("dmarc", "temperror", f"TXT {failed.name}: {failed.error}", answers)
        return check, None, found
    if policy is None:
        where = ", ".join(f"_dmarc.{name}" for name in walk_names(domain))
        return Check("dmarc", "missing", f"no DMARC record at {where}", answers), None, found
    record_domain, record = policy
    tags, error, warnings = await parse_dmarc(record, record_domain, dns_settings)
    if found.duplicate is not None:
        warnings = (
            f"_dmarc.{found.duplicate} has several DMARC records and so none (RFC 9989 §4.10)",
            *warnings,
        )
    if tags is None:
        check = Check("dmarc", "fail", f"_dmarc.{record_domain}: {error}: {record}", answers)
        return check, None, found
    p, explicit_p = tags.get("p", ("none", False))
    dmarc = DmarcPolicy(
        record_domain=record_domain,
        organisational_domain=found.organisational_domain,
        record=record,
        p=p,
        sp=tags.get("sp", (p, False))[0],
        adkim=_mode(tags.get("adkim")),
        aspf=_mode(tags.get("aspf")),
        explicit_p=explicit_p,
    )
    if not explicit_p:
        return (
            Check(
                "dmarc",
                "fail",
                f"_dmarc.{record_domain} has no p= tag: {record}",
                answers,
                warnings,
            ),
            dmarc,
            found,
        )
    where = "" if record_domain == domain else f" (organisational domain {record_domain})"
    return (
        Check("dmarc", "pass", f"_dmarc.{record_domain}{where}: {record}", answers, warnings),
        dmarc,
        found,
    )


def _mode(tag: tuple[str, bool] | None) -> Literal["r", "s"]:
    value = tag[0] if tag else "r"
    return cast(Literal["r", "s"], value if value in ("r", "s") else "r")


def aligned(
    identifier: str, identifier_org: str, author: str, author_org: str, mode: Literal["r", "s"]
) -> bool:
    """RFC 9989 §4.4: strict = the same name; relaxed = the same organisational domain."""
    if mode == "s":
        return identifier == author
    return identifier_org == author_org
