"""Generic extractors: who failed and what the remote server said, from RFC 3464 field groups,
from the SMTP transcript lines and address lists of the human-readable text, and from the
returned message's headers as the last resort."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses

from relay.feedback.bounces.message import BounceMessage

__all__ = [
    "Finding",
    "find_replycode",
    "find_status",
    "findings",
    "has_smtp_evidence",
    "original_recipients",
    "sender_addresses",
]

ADDRESS = r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+"
_ADDRESS = re.compile(ADDRESS)
# An address that starts its line (Postfix, Sendmail, qmail, Exim, Exchange, Gmail lists).
_LEADING = re.compile(
    rf"^\s*(?:[-*>]\s*)?(?:[245]\d\d[ -]+)?(?:rcpt to:\s*)?[\"']?<?(?:mailto:)?({ADDRESS})",
    re.IGNORECASE,
)
# "Recipient: <addr>", "RCPT TO:<addr>", "delivery to addr failed"; and weaker labels that also
# introduce other addresses ("address: addr", "user addr").
_RECIPIENT_LABEL = re.compile(
    rf"\b(?:recipient|addressee|rcpt to|destination|delivery to)(?:\s*\([^)]*\))?\s*[:=]?\s*"
    rf"[\"']?<?({ADDRESS})>?",
    re.IGNORECASE,
)
_LABELLED = re.compile(
    rf"\b(?:address|mailbox|to|user|for)(?:\s*\([^)]*\))?\s*[:=]?\s*[\"']?<?({ADDRESS})>?",
    re.IGNORECASE,
)
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_REPLY_WITH_STATUS = re.compile(r"(?<![\d.])([245][0-5]\d)[ -]+['\"(#]?([245]\.\d{1,3}\.\d{1,3})")
_REPLY = re.compile(
    r"(?:^|said:|error:?|reply:?|response:?|smtp;|code:?|\(|\]:|>:|\.\.\.|<<<)\s*([245][0-5]\d)(?![\d.])",
    re.IGNORECASE | re.MULTILINE,
)
_REPLY_LINE = re.compile(r"^\s*(?:[^:]{0,40}:\s*)?[245][0-5]\d[ -]")
_NOT_RECIPIENT = re.compile(
    r"^(mailer-daemon|postmaster|mail-daemon|mailer_daemon|no-?reply|root|daemon|bounce[s]?)@", re.I
)
_HEADER_LINE = re.compile(
    r"^\s*(from|sender|reply-to|return-path|message-id|references|in-reply-to)\s*:", re.I
)


@dataclass(slots=True)
class Finding:
    recipient: str | None
    diagnostic: str = ""
    status: str | None = None
    replycode: int | None = None
    action: str = ""
    context: str = ""  # the paragraph of the explanation around the recipient


def sender_addresses(bounce: BounceMessage) -> set[str]:
    """Addresses that are the sender side of the returned message or the bounce itself: never
    the failed recipient."""
    fields: list[str] = []
    for message in (bounce.headers, bounce.original):
        if message is not None:
            for name in ("From", "Sender", "Reply-To", "Return-Path"):
                fields.extend(str(value) for value in message.get_all(name, []))
    fields.extend(str(value) for value in bounce.headers.get_all("To", []))
    for report in bounce.reports:
        if "x-postfix-sender" in report:
            fields.append(report["x-postfix-sender"].partition(";")[2])
    return {address.lower() for _, address in getaddresses(fields) if "@" in address}


def findings(bounce: BounceMessage) -> list[Finding]:
    """One finding per failed recipient: from the RFC 3464 groups when there are any (a group
    without a usable recipient takes it from the text), else from the text, else from Exim's
    X-Failed-Recipients header."""
    from_text = _from_text(bounce.text, sender_addresses(bounce))
    if bounce.reports:
        named = [_from_report(report, bounce.text) for report in bounce.reports]
        spare = iter(f for f in from_text if f.recipient not in {n.recipient for n in named})
        for finding in named:
            if finding.recipient is None:
                finding.recipient = next(spare, finding).recipient
        return named
    if from_text:
        return from_text
    failed = [str(value) for value in bounce.headers.get_all("X-Failed-Recipients", [])]
    return [
        _from_header(address, bounce.text) for _, address in getaddresses(failed) if "@" in address
    ]


def _from_report(report: dict[str, str], text: str) -> Finding:
    recipient = _address(report.get("final-recipient", "")) or _address(
        report.get("original-recipient", "")
    )
    diagnostic = report.get("diagnostic-code", "").strip()
    kind, _, rest = diagnostic.partition(";")
    if rest and " " not in kind.strip():
        diagnostic = rest.strip()
    status = report.get("status", "").split()[0] if report.get("status", "").split() else None
    context = _paragraph_about(text, recipient) if recipient else ""
    return Finding(
        recipient=recipient,
        diagnostic=diagnostic,
        status=status if status and _STATUS.fullmatch(status) else None,
        replycode=find_replycode(diagnostic),
        action=report.get("action", "").strip().lower(),
        context=context,
    )


def _address(value: str) -> str | None:
    match = _ADDRESS.search(value.partition(";")[2] or value)
    return match.group(0).strip(".") if match else None


def _from_text(text: str, senders: set[str]) -> list[Finding]:
    """Recipients named by the text: addresses that lead a line or follow a label, then (when
    the only such addresses are the sender's, as in a bounce about mail to oneself) those, then
    any address at all. A labelled or unplaced address counts only when the text quotes an SMTP
    reply or status somewhere: an address in prose alone ("target address: ...") is too weak."""
    lines = text.splitlines()
    passes: list[tuple[re.Pattern[str], set[str]]] = [
        (_LEADING, senders),
        (_LEADING, set()),
        (_RECIPIENT_LABEL, senders),
    ]
    if has_smtp_evidence(text):
        passes += [(_LABELLED, senders), (_LABELLED, set()), (_ADDRESS, senders)]
    for pattern, excluded in passes:
        found: dict[str, Finding] = {}
        for index, line in enumerate(lines):
            if _HEADER_LINE.match(line):
                continue
            for address, rest in _candidates(line, pattern):
                key = address.lower()
                if key in excluded or key in found or _NOT_RECIPIENT.match(address):
                    continue
                found[key] = _finding_at(address, rest, lines, index)
        if found:
            return list(found.values())
    return []


def _from_header(address: str, text: str) -> Finding:
    """A recipient named by a header (Exim's X-Failed-Recipients), with what the text says
    near its address or its local part."""
    lines = text.splitlines()
    local = re.compile(rf"(?<![\w.-]){re.escape(address.partition('@')[0])}(?![\w-])", re.I)
    for index, line in enumerate(lines):
        match = local.search(line)
        if match:
            return _finding_at(address, line[match.end() :], lines, index)
    return Finding(recipient=address, context=text)


def _finding_at(address: str, rest: str, lines: list[str], index: int) -> Finding:
    diagnostic = _diagnostic(rest, lines, index)
    if find_replycode(diagnostic) is None and find_status(diagnostic) is None:
        diagnostic = _reply_after(lines, index) or diagnostic
    return Finding(
        recipient=address,
        diagnostic=diagnostic,
        replycode=find_replycode(diagnostic),
        context=_paragraph(lines, index),
    )


def has_smtp_evidence(text: str) -> bool:
    return find_status(text) is not None or find_replycode(text) is not None


def _candidates(line: str, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    """(address, what follows it) for each match of `pattern` (its last group, or the whole
    match, being the address)."""
    return [
        (match.group(match.lastindex or 0).strip("."), line[match.end(match.lastindex or 0) :])
        for match in pattern.finditer(line)
    ]


def _diagnostic(rest: str, lines: list[str], index: int) -> str:
    """What follows the address: the rest of its line and the lines after it up to a blank
    line or the next address line."""
    parts = [rest.strip(" :>.\"'")]
    for line in lines[index + 1 : index + 12]:
        if not line.strip() or _LEADING.match(line):
            break
        parts.append(line.strip())
    return " ".join(part for part in parts if part)


def _reply_after(lines: list[str], index: int) -> str:
    """The first SMTP reply (a line starting with a reply code) after the address line: where
    Gmail, Exchange and many others quote what the remote server said."""
    for line in lines[index + 1 : index + 30]:
        if _REPLY_LINE.match(line):
            return line.strip()
    return ""


def _paragraph(lines: list[str], index: int) -> str:
    start = index
    while start > 0 and lines[start - 1].strip():
        start -= 1
    end = index
    while end + 1 < len(lines) and lines[end + 1].strip():
        end += 1
    following = end + 1
    while following < len(lines) and not lines[following].strip():
        following += 1
    # The explanation often sits in the paragraph after the address list.
    while following < len(lines) and lines[following].strip() and following - end < 15:
        following += 1
    return "\n".join(lines[start:following])


def _paragraph_about(text: str, recipient: str) -> str:
    lines = text.splitlines()
    lowered = recipient.lower()
    for index, line in enumerate(lines):
        if lowered in line.lower():
            return _paragraph(lines, index)
    return ""


def find_status(text: str) -> str | None:
    """The enhanced status code the text gives, preferring one written next to a reply code."""
    paired = _REPLY_WITH_STATUS.search(text)
    if paired:
        return paired.group(2)
    match = _STATUS.search(text)
    return match.group(0) if match else None


def find_replycode(text: str) -> int | None:
    paired = _REPLY_WITH_STATUS.search(text)
    if paired:
        return int(paired.group(1))
    match = _REPLY.search(text)
    return int(match.group(1)) if match else None


def original_recipients(original: Message | None) -> list[str]:
    if original is None:
        return []
    fields = [str(value) for value in original.get_all("To", [])]
    return [address for _, address in getaddresses(fields) if "@" in address]
