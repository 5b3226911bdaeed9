"""The reason table (`reasons.toml`, data) and the rules that read it: which reason a bounce's
diagnostic text, status code, SMTP command and DSN action name, each reason's category and
default status, and Sisimai's hard-bounce rule.

A reason is decided in two passes, in the orders the table gives. The first pass takes a reason
whose status code or wording says it outright; the second, run only when the status names no
reason or a vague one, takes the first reason whose wording occurs, then the reason the status
names, then what the status class, the SMTP command and the DSN action imply."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from relay.feedback.model import BounceCategory

__all__ = [
    "Evidence",
    "Reason",
    "by_name",
    "decide",
    "is_hard",
    "names_no_command",
    "normalise",
    "smtp_command",
]

_SPACE = re.compile(r"\s+")
# A multi-line SMTP reply repeats its code and status on each line ("550-5.7.1 ..."): inside
# the text they split the wording apart.
_CONTINUATION = re.compile(r"(?<=\S) [245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}(?= )")
_HARD = frozenset({"userunknown", "hostunknown", "hasmoved"})
# The SMTP command a transcript line (">>> RCPT TO:<...>") or an MTA's explanation ("after
# RCPT TO", "in reply to end of DATA command", "SMTP:RCPT", "did not like our RCPT TO", "after
# initial connection") says failed.
_COMMAND = re.compile(
    r"(?:>>>\s*|\bafter\s+|\bin reply to\s+(?:end of\s+)?|\bsmtp:|\bour\s+|^\s*)"
    r"(HELO|EHLO|MAIL FROM|RCPT(?: TO)?|DATA|STARTTLS)\b"
    r"|\b(end of data|initial connection)\b",
    re.IGNORECASE | re.MULTILINE,
)
_BEFORE_DATA = frozenset({"CONN", "HELO", "MAIL", "RCPT"})


@dataclass(frozen=True, slots=True)
class Reason:
    name: str
    category: BounceCategory
    default_status: str
    phrases: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    excluded: tuple[str, ...]
    statuses: frozenset[str]

    def matches(self, text: str) -> bool:
        """`text` must already be `normalise`d."""
        if any(phrase in text for phrase in self.excluded):
            return False
        return any(phrase in text for phrase in self.phrases) or any(
            pattern.search(text) for pattern in self.patterns
        )


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a bounce says about one recipient."""

    text: str  # the diagnostic, `normalise`d
    status: str | None = None  # RFC 3463 enhanced status
    command: str | None = None  # the SMTP command the failure answered (`smtp_command`)
    action: str = ""  # the DSN Action field, lower case
    domain: str = ""  # the recipient's domain, lower case
    kind: str = ""  # the Diagnostic-Code type, lower case ("smtp", "x-unix", ...)
    # The format never names the SMTP command (`unnamed_command` in reasons.toml): a user
    # unknown in wording alone may be a filter's verdict after DATA.
    commandless: bool = False


@dataclass(frozen=True, slots=True)
class _Table:
    reasons: Mapping[str, Reason]
    first: tuple[str, ...]
    second: tuple[str, ...]
    vague: frozenset[str]
    list_hosts: frozenset[str]
    unnamed_command: tuple[str, ...]
    by_status: Mapping[str, str]


@cache
def _table() -> _Table:
    data = tomllib.loads(resources.files(__package__).joinpath("reasons.toml").read_text("utf-8"))
    reasons = {
        entry["name"]: Reason(
            name=entry["name"],
            category=BounceCategory(entry["category"]),
            default_status=entry.get("default", ""),
            phrases=tuple(entry.get("phrases", ())),
            patterns=tuple(re.compile(p) for p in entry.get("patterns", ())),
            excluded=tuple(entry.get("exclude", ())),
            statuses=frozenset(entry.get("status", ())),
        )
        for entry in data["reason"]
    }
    by_status: dict[str, str] = {}
    for reason in reasons.values():
        for status in reason.statuses:
            if status in by_status:
                raise ValueError(f"reasons.toml: {status} names {by_status[status]} already")
            by_status[status] = reason.name
    return _Table(
        reasons=reasons,
        first=tuple(data["first_pass"]),
        second=tuple(data["second_pass"]),
        vague=frozenset(data["vague_status"]),
        list_hosts=frozenset(data["list_hosts"]),
        unnamed_command=tuple(data["unnamed_command"]),
        by_status=by_status,
    )


def by_name(name: str) -> Reason:
    return _table().reasons[name]


def normalise(text: str) -> str:
    return _CONTINUATION.sub("", _SPACE.sub(" ", text)).strip().lower()


def names_no_command(signature: str) -> bool:
    """Whether `signature` (the bounce's headers as "name: value" lines and its explanation,
    lower case) shows an MTA that never says which SMTP command failed."""
    return any(mark in signature for mark in _table().unnamed_command)


def smtp_command(text: str) -> str | None:
    """The SMTP command the failure answered, as the last one `text` names: HELO (for EHLO
    too), MAIL, RCPT, DATA, STARTTLS, or CONN for the connection itself."""
    found = None
    for match in _COMMAND.finditer(text):
        word = (match.group(1) or match.group(2)).upper()
        if word == "INITIAL CONNECTION":
            found = "CONN"
        elif word == "END OF DATA":
            found = "DATA"
        else:
            found = {"EHLO": "HELO", "MAIL FROM": "MAIL", "RCPT TO": "RCPT"}.get(word, word)
    return found


def decide(evidence: Evidence) -> str:
    """The reason name (the two passes of the module docstring, then the fallbacks)."""
    table = _table()
    text, status = evidence.text, evidence.status or ""
    if status.startswith("2."):
        return "delivered"
    named = table.by_status.get(status, "")
    # Any other type than an SMTP reply (x-unix: a local delivery program) answered no SMTP
    # command: the wording decides, then the status.
    if evidence.kind in ("", "smtp"):
        for name in table.first:
            if _probe(name, evidence, named):
                return name
        if named and named not in table.vague:
            return named
    said = next((name for name in table.second if by_name(name).matches(text)), None)
    if said or named:
        return said or named
    if status[1:3] == ".6":
        return "contenterror"
    if status[1:3] == ".7":
        return "securityerror"
    if evidence.kind == "x-unix":
        return "mailererror"
    if by_name("syntaxerror").matches(text):
        return "syntaxerror"
    if evidence.action in ("delayed", "expired"):
        return "expired"
    if evidence.command == "HELO":
        return "blocked"
    if evidence.domain in table.list_hosts:
        return "rejected"
    return "onhold" if text else "undefined"


def _probe(name: str, evidence: Evidence, named: str) -> bool:
    """Whether the first pass takes `name`: most reasons when the status names them or their
    wording occurs; a few need the SMTP command to tell them apart."""
    text, command = evidence.text, evidence.command
    says = by_name(name).matches
    if name == "userunknown":
        # The wording counts when it answered RCPT TO; or, when neither the command nor the
        # status says otherwise (Exchange sends the null-MX 5.1.10 for an unknown recipient),
        # unless the text names another reason the status could stand for. Never when it
        # answered MAIL FROM (the sender is unknown).
        if command == "RCPT" and says(text):
            return True
        unsaid = named in ("", "notaccept")
        worded = says(text) and command is None and unsaid and not evidence.commandless
        others = ("mailboxfull", "blocked", "hasmoved", "rejected", "notaccept", "filtered")
        return (
            command != "MAIL"
            and (named == name or worded)
            and not any(by_name(other).matches(text) for other in others)
        )
    if name == "filtered":
        # A server reads the message only after DATA: "user unknown" there is a filter's verdict.
        if named != name and command in _BEFORE_DATA:
            return False
        return says(text) or by_name("userunknown").matches(text)
    if name == "rejected":
        if named == name:
            return True
        if command == "MAIL":
            return says(text) or by_name("userunknown").matches(text)
        weak = named in ("", "securityerror", "systemerror")
        return says(text) and ((command == "DATA" and named != "userunknown") or weak)
    if name == "notaccept":
        return says(text)
    if name == "hostunknown" and named == "hostunknown":
        return not by_name("networkerror").matches(text)
    if name == "mesgtoobig" and named == "exceedlimit":
        return False
    return named == name or says(text)


def is_hard(reason: str, status: str | None, replycode: int | None) -> bool:
    """Sisimai's rule: unknown user or host and a moved mailbox are hard; a domain that accepts
    no mail is hard when the failure is permanent; everything else is soft."""
    if reason in _HARD:
        return True
    if reason == "notaccept":
        return (status or "").startswith("5") or (replycode or 0) >= 500
    return False
