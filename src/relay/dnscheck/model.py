"""What `check_domain` found: one Check per item, the DNS answers behind it, and the facts the
policy rules (MBP-SPF-PASS, MBP-DKIM-ALIGNED, MBP-DMARC-RECORD) read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Answer", "Check", "DmarcPolicy", "DomainReadiness", "Status", "worst"]

Status = Literal["pass", "fail", "missing", "temperror", "unknown"]

# How bad each status is for readiness: fail and missing make a domain not ready; temperror
# means DNS could not tell now; unknown means relay could not judge (nothing to check with).
_SEVERITY: dict[Status, int] = {"pass": 0, "unknown": 1, "temperror": 2, "missing": 3, "fail": 3}


def worst(statuses: Iterable[Status]) -> Status:
    """The status that decides: fail or missing over temperror over unknown over pass."""
    found: Status = "pass"
    for status in statuses:
        if _SEVERITY[status] > _SEVERITY[found]:
            found = status
    return found


@dataclass(frozen=True, slots=True)
class Answer:
    """One DNS question and what came back: the records as text (TXT character-strings
    joined), or the error (NXDOMAIN, NODATA, or the temporary failure)."""

    name: str
    rdtype: str
    records: tuple[str, ...] = ()
    error: str | None = None
    temporary: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.rdtype,
            "records": list(self.records),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness item: `mx`, `spf`, `dkim:<selector>`, `dmarc` or `alignment`."""

    name: str
    status: Status
    detail: str  # one line for people
    answers: tuple[Answer, ...] = ()  # what DNS said, for the audit log
    warnings: tuple[str, ...] = ()  # advice that does not change the status

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "warnings": list(self.warnings),
            "answers": [answer.to_dict() for answer in self.answers],
        }


@dataclass(frozen=True, slots=True)
class DmarcPolicy:
    """The DMARC record that applies to a domain, found by the tree walk."""

    record_domain: str  # where _dmarc.<record_domain> was found
    organisational_domain: str
    record: str
    p: str
    sp: str
    adkim: Literal["r", "s"]
    aspf: Literal["r", "s"]
    explicit_p: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_domain": self.record_domain,
            "organisational_domain": self.organisational_domain,
            "record": self.record,
            "p": self.p,
            "sp": self.sp,
            "adkim": self.adkim,
            "aspf": self.aspf,
        }


@dataclass(frozen=True, slots=True)
class DomainReadiness:
    """Everything `relay dns-check DOMAIN` reports, frozen so that it can be cached and shared.

    `domain` is the From domain; `envelope_domain` the MAIL FROM domain whose SPF and MX were
    checked (the VERP domain when there is one, else `domain`). `dkim_domain` is the d= relay
    would sign with (None: no key) and `active_dkim` the names of the checks of the keys that
    sign now (not rotated-out selectors); `dkim_aligned` / `spf_aligned` are None when DNS could
    not tell or there is nothing to align.
    """

    domain: str
    envelope_domain: str
    checks: tuple[Check, ...]
    dmarc: DmarcPolicy | None = None
    dkim_domain: str | None = None
    active_dkim: tuple[str, ...] = ()
    dkim_aligned: bool | None = None
    spf_aligned: bool | None = None
    _by_name: dict[str, Check] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {check.name: check for check in self.checks})

    def check(self, name: str) -> Check | None:
        return self._by_name.get(name)

    def status_of(self, prefix: str) -> Status:
        """The worst status of the checks named `prefix` or `prefix:…` ("dkim" covers every
        selector); "unknown" when there is none."""
        matching = [
            check.status
            for check in self.checks
            if check.name == prefix or check.name.startswith(f"{prefix}:")
        ]
        return worst(matching) if matching else "unknown"

    @property
    def status(self) -> Status:
        return worst(check.status for check in self.checks)

    @property
    def ready(self) -> bool:
        """Nothing fails, is missing or failed temporarily."""
        return self.status in ("pass", "unknown")

    @property
    def temporary(self) -> bool:
        """Only temporary DNS failures stand between the domain and ready."""
        return self.status == "temperror"

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "envelope_domain": self.envelope_domain,
            "status": self.status,
            "ready": self.ready,
            "dkim_domain": self.dkim_domain,
            "dkim_aligned": self.dkim_aligned,
            "spf_aligned": self.spf_aligned,
            "dmarc": self.dmarc.to_dict() if self.dmarc else None,
            "checks": [check.to_dict() for check in self.checks],
        }
