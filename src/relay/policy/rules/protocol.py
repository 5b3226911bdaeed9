"""Protocol rules from the RFCs (COMPLIANCE §8).

Header values are read raw (`raw_items`, unfolded) and never decoded here: decoding odd
encodings raises in the email package, and the syntax these rules check is the raw syntax.

Out of scope here: RFC-SMTPUTF8, RFC-5321-DATA-END, RFC-5321-RCPT-LIMIT and RFC-5321-SIZES are
enforced by ingest before a rule could run; RFC-LUP-OPAQUE, RFC-LUP-DKIM, RFC-DKIM-*,
RFC-DSN, RFC-ARF, RFC-AUTO-SUBMITTED and RFC-STARTTLS-AUTH are properties of the relay's own
signer, endpoints, generators and listener, not checks on a submitted message; RFC-DMARC-ALIGN
and RFC-NULLMX need DNS.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from typing import Any

from pydantic import BaseModel, ConfigDict

from relay.policy.context import MessageContext
from relay.policy.inspect import ONE_CLICK, problems_finding
from relay.policy.model import Finding, Stage
from relay.policy.rules import rule

# RFC 5322 §3.6: the fields that may occur at most once (the table's "max number" column).
SINGLE_INSTANCE = (
    "Date",
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Subject",
)
# RFC 6409 §8: a submission server may add these when they are missing.
ADDABLE = ("Date", "Message-ID")

MAX_LINE = 998  # RFC 5322 §2.1.1: octets, without the CRLF
MAX_LIST_ID = 255  # RFC 2919 §2: octets of the list-id between the angle brackets

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_COMMENT = re.compile(r"\([^()]*\)")  # CFWS comments, RFC 5322 §3.2.2 (not nested)
# RFC 2369 §2 / COMPLIANCE RFC-LU-SYNTAX: `<URI>` with a scheme and no whitespace inside.
_BRACKETED_URI = r"<[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x3b\x3d\x3f-\x7e]+>"
_URI_LIST = re.compile(rf"^[ \t]*{_BRACKETED_URI}[ \t]*(?:,[ \t]*{_BRACKETED_URI}[ \t]*)*$")
_URI = re.compile(r"<([^<>]*)>")
# RFC 2919 §2: [phrase] "<" list-label "." list-id-namespace ">"; the label is dot-atom-text.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LIST_ID = re.compile(rf"<({_ATEXT}+(?:\.{_ATEXT}+)+)>[ \t]*$")


def _raw_values(message: EmailMessage, name: str) -> list[str]:
    """The raw values of every `name` field, unfolded, in order: the syntax as sent, never
    decoded (inspect.header_values decodes)."""
    wanted = name.lower()
    return [
        _FOLD.sub("", str(value)).strip()
        for key, value in message.raw_items()
        if key.lower() == wanted
    ]


def _uris(value: str) -> list[str]:
    """The URIs of a List-Unsubscribe value, in preference order (RFC 2369 §2)."""
    return [uri.strip() for uri in _URI.findall(_COMMENT.sub("", value))]


def _is_https(uri: str) -> bool:
    return uri.lower().startswith("https://") and len(uri) > len("https://")


@rule("RFC-5322-REQUIRED", Stage.DATA)
def required_fields(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """One From, Date and Message-ID present; no single-instance field (RFC 5322 §3.6) twice."""
    # The catalogue has one id for both outcomes ("fix / reject"): a duplicate or a missing
    # From cannot be repaired, a missing Date or Message-ID can be added by a submission server
    # (RFC 6409 §8). One id binds one action, so there is one finding per remedy and
    # inputs["remedy"] says which; the rewrite stage will act on the "fix" one.
    message = context.message
    if message is None:
        return []
    counts = Counter(key.lower() for key in message)  # field names, never their values
    findings: list[Finding] = []
    duplicated = {
        name: counts[name.lower()] for name in SINGLE_INSTANCE if counts[name.lower()] > 1
    }
    problems = [f"{name} occurs {count} times" for name, count in duplicated.items()]
    if not counts["from"]:
        problems.append("no From field")
    elif not any(_raw_values(message, "From")):
        problems.append("the From field is empty")
    if problems:
        findings.append(
            Finding(
                "; ".join(problems),
                {"problems": problems, "duplicated": duplicated, "remedy": "reject"},
            )
        )
    missing = [name for name in ADDABLE if not counts[name.lower()]]
    if missing:
        findings.append(
            Finding(
                f"no {' and no '.join(missing)} field",
                {"missing": missing, "remedy": "fix"},
            )
        )
    return findings


@rule("RFC-5322-LINELEN", Stage.DATA)
def line_length(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """No line longer than 998 octets without its CRLF (RFC 5322 §2.1.1)."""
    # Ingest refuses such lines at DATA already; this rule records the requirement and audits
    # messages that reach the policy stage by another way. Like RFC-5322-REQUIRED, one id with
    # two outcomes: a long header line cannot be repaired, a long body line can be re-encoded
    # (quoted-printable) before signing; inputs["remedy"] says which.
    if context.raw is None or max(map(len, context.raw.splitlines()), default=0) <= MAX_LINE:
        return []
    findings: list[Finding] = []
    in_header = True
    long_lines: dict[str, list[tuple[int, int]]] = {"header": [], "body": []}
    for number, line in enumerate(context.raw.splitlines(), start=1):
        if in_header and not line:
            in_header = False
            continue
        if len(line) > MAX_LINE:
            long_lines["header" if in_header else "body"].append((number, len(line)))
    for part, remedy in (("header", "reject"), ("body", "fix")):
        found = long_lines[part]
        if found:
            findings.append(
                Finding(
                    f"{len(found)} {part} line(s) longer than {MAX_LINE} octets,"
                    f" the first is line {found[0][0]} ({found[0][1]} octets)",
                    {
                        "part": part,
                        "lines": [number for number, _ in found[:20]],
                        "longest": max(length for _, length in found),
                        "remedy": remedy,
                    },
                )
            )
    return findings


def _excerpt(value: str, limit: int = 300) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


@rule("RFC-LU-SYNTAX", Stage.DATA)
def list_unsubscribe_syntax(
    context: MessageContext, params: Mapping[str, Any]
) -> Iterable[Finding]:
    """List-Unsubscribe, when present, is a comma-separated list of `<URI>`s (RFC 2369 §2)."""
    if context.message is None:
        return []
    malformed = [
        _excerpt(value)
        for value in _raw_values(context.message, "List-Unsubscribe")
        if not _URI_LIST.match(_COMMENT.sub("", value))
    ]
    if not malformed:
        return []
    return [
        Finding(
            "List-Unsubscribe is not a comma-separated list of <URI>s"
            " (a scheme, no whitespace inside the brackets)",
            {"list_unsubscribe": malformed},
        )
    ]


@rule("RFC-LUP-EXACT", Stage.DATA)
def one_click_exact(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """A List-Unsubscribe-Post field is the only one, reads exactly
    `List-Unsubscribe=One-Click`, and goes with one List-Unsubscribe that has an https URI
    (RFC 8058 §3.1)."""
    message = context.message
    if message is None:
        return []
    posts = _raw_values(message, "List-Unsubscribe-Post")
    if not posts:
        return []
    unsubscribes = _raw_values(message, "List-Unsubscribe")
    problems: list[str] = []
    if len(posts) > 1:
        problems.append(f"{len(posts)} List-Unsubscribe-Post fields, RFC 8058 allows one")
    problems.extend(
        f"List-Unsubscribe-Post is {_excerpt(post, 80)!r}, not exactly {ONE_CLICK!r}"
        for post in posts
        if post != ONE_CLICK
    )
    if len(unsubscribes) != 1:
        problems.append(f"{len(unsubscribes)} List-Unsubscribe fields, one is needed")
    uris = [uri for value in unsubscribes for uri in _uris(value)]
    if unsubscribes and not any(_is_https(uri) for uri in uris):
        problems.append("List-Unsubscribe has no https URI")
    inputs = {
        "problems": problems,
        "list_unsubscribe_post": [_excerpt(post) for post in posts],
        "list_unsubscribe": [_excerpt(value) for value in unsubscribes],
    }
    return problems_finding(problems, inputs)


class ListIdParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Gmail's subscription guidelines ask for a List-Id per list on marketing streams.
    require_for_commercial: bool = False


@rule("RFC-LISTID", Stage.DATA, params=ListIdParams)
def list_id(context: MessageContext, params: Mapping[str, Any]) -> Iterable[Finding]:
    """At most one List-Id, `[phrase] <label.namespace>` of at most 255 octets, its namespace
    within the sender's verified domains (RFC 2919 §2-3)."""
    message = context.message
    if message is None:
        return []
    values = _raw_values(message, "List-Id")
    if not values:
        if params["require_for_commercial"] and context.commercial:
            return [Finding("commercial message without a List-Id", {"list_id": []})]
        return []
    problems: list[str] = []
    if len(values) > 1:
        problems.append(f"{len(values)} List-Id fields, RFC 2919 allows one")
    verified = tuple(
        domain.lower().rstrip(".")
        for domain in (context.sender.verified_domains if context.sender else ())
    )
    for value in values:
        match = _LIST_ID.search(_COMMENT.sub("", value))
        if match is None:
            problems.append(
                f"{_excerpt(value, 80)!r} is not of the form [phrase] <label.namespace>"
            )
            continue
        identifier = match.group(1)
        size = len(identifier.encode())
        if size > MAX_LIST_ID:
            problems.append(f"the list-id is {size} octets, more than {MAX_LIST_ID}")
        # Without a sender profile there are no verified domains to compare with; the
        # sender-identification rules deal with an unknown sender.
        lowered = identifier.lower()
        if verified and not any(lowered.endswith("." + domain) for domain in verified):
            problems.append(
                f"the namespace of {_excerpt(identifier, 80)!r} is not within the sender's"
                " verified domains"
            )
    inputs = {
        "problems": problems,
        "list_id": [_excerpt(value) for value in values],
        "verified_domains": list(verified),
    }
    return problems_finding(problems, inputs)
