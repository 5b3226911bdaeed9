"""Generic extractors: who failed and what the remote server said, from RFC 3464 field groups,
from the SMTP transcript lines and address lists of the human-readable text, and from the
returned message's headers as the last resort."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
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

# A local part is a dot-atom or a quoted string (RFC 5321 4.1.2: "neko..nyaan"@example.org).
ADDRESS = (
    r"(?:\"[^\"\\\s]{1,64}\"|(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+)"
    r"@[\w-]+(?:\.[\w-]+)+"
)
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
_LEADING_CODE = re.compile(r"^\s*([245]\d\d)[ -]")
# A line that starts the next item of a transcript rather than continuing the one before.
_NEXT_ITEM = re.compile(r"^\s*(?:>>>|<<<|while talking|[245]\d\d[ -])", re.IGNORECASE)
_REMOTE_REPLY = re.compile(r"^\s*<<<\s*([45]\d\d\b.*)")
_BRACKETED = re.compile(rf"\s*<({ADDRESS})>")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)")
_REPLY_WITH_STATUS = re.compile(r"(?<![\d.])([245][0-5]\d)[ -]+['\"(#]?([245]\.\d{1,3}\.\d{1,3})")
_REPLY = re.compile(
    r"(?:^|said:|error:?|reply:?|response:?|failure:|reason:|smtp;|code\s*:?|[(\[]|\]:|>:|\.\.\."
    r"|<<<)\s*([245][0-5]\d)(?![\d.])",
    re.IGNORECASE | re.MULTILINE,
)
# A line quoting an SMTP reply or an enhanced status code, after at most a short lead-in
# ("Out: 451 ...", "SMTP:RCPT host 192.0.2.8: 553 ...", "Remote Server returned '550 ...").
_REPLY_LINE = re.compile(r"^.{0,60}?(?<![\w.,:+-])([245][0-5]\d)(?=[ -]|$)")
_STATUS_LINE = re.compile(r"^.{0,60}?(?<![\w.])[245]\.\d{1,3}\.\d{1,3}(?![\d]|\.\d)")
# How far from an address line a quoted reply is taken to be about it.
_NEARBY_LINES = 40
# How far a paragraph (the context the reason classifier reads) reaches from its address line.
_PARAGRAPH_LINES = 30
# How many lines of the text are searched for a header-named recipient's local part.
_LOCAL_PART_LINES = 500
# Recipients reported per bounce at most: bounded work on a huge or hostile message.
_MAX_RECIPIENTS = 1000
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
    kind: str = ""  # the Diagnostic-Code type, lower case: "smtp", "x-unix", "x-postfix", ...


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
    without a usable recipient takes one from X-Failed-Recipients or the text), else from the
    X-Failed-Recipients header (Exim, Gmail) with what the text says about each, else from the
    text, else from the returned message's To."""
    weak = _weak_evidence_counts(bounce)
    text = _Explanation(bounce.text)
    from_text = _from_text(text, sender_addresses(bounce), weak=weak)
    failed = _header_addresses(bounce.headers, "X-Failed-Recipients")
    if bounce.reports:
        named = [_from_report(report, text) for report in bounce.reports[:_MAX_RECIPIENTS]]
        taken = {n.recipient.lower() for n in named if n.recipient}
        spare = iter(
            address
            for address in [*failed, *(f.recipient for f in from_text if f.recipient)]
            if address.lower() not in taken
        )
        for finding in named:
            if finding.recipient is None:
                finding.recipient = next(spare, None)
            if finding.replycode is None and find_status(finding.diagnostic) is None:
                # With several groups, a reply that does not name the recipient may be another's.
                said = text.said_about(finding.recipient, only_naming=len(named) > 1)
                finding.diagnostic = finding.diagnostic or said
                finding.replycode = find_replycode(said)
        return named
    if failed:
        by_text = {f.recipient.lower(): f for f in from_text if f.recipient}
        return [
            by_text.get(address.lower()) or _from_header(address, text)
            for address in failed[:_MAX_RECIPIENTS]
        ]
    if from_text or not weak:
        return from_text
    return [
        Finding(recipient=address, context=bounce.text)
        for address in original_recipients(bounce.original)[:_MAX_RECIPIENTS]
    ]


def _weak_evidence_counts(bounce: BounceMessage) -> bool:
    """Whether an address the text names only in prose (behind a weak label like "address:",
    or nowhere in particular) or only in the returned message's To may be taken as the failed
    recipient. Not in an RFC 3834 auto-reply (Auto-Submitted: auto-replied) that quotes no SMTP
    reply or status: responders write contact addresses in prose, and an MTA that marks its
    bounces that way (Exim) names the recipient on a line of its own."""
    replied = str(bounce.headers.get("Auto-Submitted", "")).strip().lower()
    return not replied.startswith("auto-replied") or has_smtp_evidence(bounce.text)


def _header_addresses(message: Message | None, name: str) -> list[str]:
    if message is None:
        return []
    fields = [str(value) for value in message.get_all(name, [])]
    return [address for _, address in getaddresses(fields) if "@" in address]


def _from_report(report: dict[str, str], text: _Explanation) -> Finding:
    recipient = _address(report.get("final-recipient", "")) or _address(
        report.get("original-recipient", "")
    )
    diagnostic = report.get("diagnostic-code", "").strip()
    kind, semicolon, rest = diagnostic.partition(";")
    kind = kind.strip().lower() if semicolon and " " not in kind.strip() else ""
    if kind:
        diagnostic = rest.strip()
    status = next(iter(report.get("status", "").split()), "")
    # The remote server's own reply ("550 5.7.1 ...") outranks the reporting MTA's summary.
    paired = _REPLY_WITH_STATUS.search(diagnostic)
    if paired and not paired.group(2).endswith(".0.0"):
        status = paired.group(2)
    where = text.line_naming(recipient) if recipient else None
    context = text.paragraph(where) if where is not None else ""
    return Finding(
        recipient=recipient,
        diagnostic=diagnostic,
        status=status if _STATUS.fullmatch(status) else None,
        replycode=find_replycode(diagnostic),
        action=report.get("action", "").strip().lower(),
        context=context,
        kind=kind,
    )


def _address(value: str) -> str | None:
    match = _ADDRESS.search(value.partition(";")[2] or value)
    return match.group(0).strip(".") if match else None


def _from_text(text: _Explanation, senders: set[str], *, weak: bool) -> list[Finding]:
    """Recipients named by the text: addresses that lead a line or follow a recipient label,
    then (when the only such addresses are the sender's, as in a bounce about mail to oneself)
    those; with `weak`, then addresses behind weaker labels and any address at all; last,
    addresses leading a line that look like a system mailbox (postmaster@ can bounce too)."""
    passes: list[tuple[re.Pattern[str], set[str]]] = [
        (_LEADING, senders),
        (_LEADING, set()),
        (_RECIPIENT_LABEL, senders),
    ]
    if weak:
        passes += [(_LABELLED, senders), (_LABELLED, set()), (_ADDRESS, senders)]
    for pattern, excluded in passes:
        found = _found_by(pattern, text, excluded, system=False)
        if found:
            return found
    return _found_by(_LEADING, text, senders, system=True)


def _found_by(
    pattern: re.Pattern[str], text: _Explanation, excluded: set[str], *, system: bool
) -> list[Finding]:
    """The addresses `pattern` finds, except `excluded` ones and (unless `system`) mailboxes
    like postmaster@ and mailer-daemon@."""
    found: dict[str, Finding] = {}
    for index, line in enumerate(text.lines):
        if _HEADER_LINE.match(line):
            continue
        for address, rest, code in _candidates(line, pattern):
            key = address.lower()
            if key in excluded or key in found or (not system and _NOT_RECIPIENT.match(key)):
                continue
            found[key] = _finding_at(address, rest, text, index, code)
            if len(found) >= _MAX_RECIPIENTS:
                return list(found.values())
    return list(found.values())


def _from_header(address: str, text: _Explanation) -> Finding:
    """A recipient named by a header (X-Failed-Recipients), with what the text says near its
    address or (in its first lines) its local part."""
    local = re.compile(rf"(?<![\w.-]){re.escape(address.partition('@')[0])}(?![\w-])", re.I)
    named = text.line_naming(address)
    lines = [named] if named is not None else range(min(len(text.lines), _LOCAL_PART_LINES))
    for index in lines:
        match = local.search(text.lines[index])
        if match:
            return _finding_at(address, text.lines[index][match.end() :], text, index)
    said = text.said_about(address)
    return Finding(
        recipient=address, diagnostic=said, replycode=find_replycode(said), context=text.text
    )


def _finding_at(address: str, rest: str, text: _Explanation, index: int, code: str = "") -> Finding:
    """What the text says about `address` named on line `index`: what follows it, when that
    quotes no reply, prefixed by the remote reply the transcript quotes just before (Sendmail:
    "<<< 550 Insecure Mail Relay" then "554 <a@example.org>... Remote protocol error") or by
    the code leading its line; else the reply `said_about` finds."""
    diagnostic = text.following(rest, index)
    if find_replycode(diagnostic) is None:
        prefix = text.remote_reply_before(index) or code
        diagnostic = f"{prefix} {diagnostic}".strip()
    if find_replycode(diagnostic) is None and find_status(diagnostic) is None:
        diagnostic = text.said_about(address, index) or diagnostic
    return Finding(
        recipient=address,
        diagnostic=diagnostic,
        replycode=find_replycode(diagnostic),
        context=text.paragraph(index),
    )


def has_smtp_evidence(text: str) -> bool:
    return find_status(text) is not None or find_replycode(text) is not None


def _candidates(line: str, pattern: re.Pattern[str]) -> list[tuple[str, str, str]]:
    """(address, what follows it, the reply code leading the line) for each match of `pattern`
    (its last group, or the whole match, being the address). An address written as the
    display name of a bracketed one ("a@example.org <b@example.net>") gives way to it."""
    found = []
    for match in pattern.finditer(line):
        group = match.lastindex or 0
        address, rest = match.group(group).strip("."), line[match.end(group) :]
        bracketed = _BRACKETED.match(rest)
        if bracketed:
            address, rest = bracketed.group(1), rest[bracketed.end() :]
        code = _LEADING_CODE.match(line[: match.start(group)])
        found.append((address, rest, code.group(1) if code else ""))
    return found


class _Explanation:
    """The bounce's explanation as lines, with the lines that quote an SMTP reply (a failure:
    4xx or 5xx) or only an enhanced status code, and where each address first occurs, indexed
    once: every look-up is then bounded however long the text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines()
        self.replies: list[int] = []
        self.statuses: list[int] = []
        self._first_line: dict[str, int] = {}
        self._first_reply: dict[str, int] = {}
        for index, line in enumerate(self.lines):
            reply = _REPLY_LINE.match(line)
            if reply and reply.group(1)[0] in "45":
                self.replies.append(index)
            elif _STATUS_LINE.match(line) and not reply:
                self.statuses.append(index)
            if "@" in line:
                for match in _ADDRESS.finditer(line):
                    address = match.group(0).strip(".").lower()
                    self._first_line.setdefault(address, index)
                    if self.replies and self.replies[-1] == index:
                        self._first_reply.setdefault(address, index)

    def line_naming(self, address: str) -> int | None:
        return self._first_line.get(address.lower())

    def following(self, rest: str, index: int) -> str:
        """What follows an address: the rest of its line and the lines after it up to a blank
        line, the next address line or the next transcript item."""
        parts = [rest.strip(" :>.\"'")]
        for line in self.lines[index + 1 : index + 12]:
            if not line.strip() or _LEADING.match(line) or _NEXT_ITEM.match(line):
                break
            parts.append(line.strip())
        return " ".join(part for part in parts if part)

    def remote_reply_before(self, index: int) -> str:
        """The failure reply a transcript quotes ("<<< 550 ...") shortly before line `index`
        and after the previous address line."""
        for line in reversed(self.lines[max(0, index - 5) : index]):
            reply = _REMOTE_REPLY.match(line)
            if reply:
                return reply.group(1).strip()
            if _LEADING.match(line):
                break
        return ""

    def said_about(
        self, address: str | None, index: int | None = None, *, only_naming: bool = False
    ) -> str:
        """The reply the text quotes for `address` (on line `index`, else where the text first
        names it): a reply line naming the address, else (unless `only_naming`) the nearest
        reply line after it, else before it; else, the same for a line with only a status
        code. A text that does not name the address gives its first reply."""
        if address is not None:
            naming = self._first_reply.get(address.lower())
            if naming is not None:
                return self._reply_at(naming)
            if only_naming:
                return ""
            if index is None:
                index = self.line_naming(address)
        for candidates in (self.replies, self.statuses):
            if not candidates:
                continue
            if index is None:
                return self._reply_at(candidates[0])
            after = bisect_right(candidates, index)
            if after < len(candidates) and candidates[after] <= index + _NEARBY_LINES:
                return self._reply_at(candidates[after])
            before = bisect_left(candidates, index) - 1
            if before >= 0 and candidates[before] >= index - _NEARBY_LINES:
                return self._reply_at(candidates[before])
        return ""

    def _reply_at(self, index: int) -> str:
        """The reply on line `index` with the lines continuing it (a multi-line reply repeats
        its code: "550-5.1.1 ...", "550 5.1.1 ...")."""
        first = _REPLY_LINE.match(self.lines[index])
        parts = [self.lines[index].strip()]
        for line in self.lines[index + 1 : index + 10]:
            more = _REPLY_LINE.match(line)
            if not (first and more and more.group(1) == first.group(1)):
                break
            parts.append(line.strip())
        return " ".join(parts)

    def paragraph(self, index: int) -> str:
        """The paragraph around line `index` and the one after it (where the explanation of an
        address list often sits), and the one after that when the second is only a label
        ("because:", "Reason:"); with the paragraph before when it introduces the address
        ("... has been delayed:"); each cut to a few dozen lines."""
        lines = self.lines
        start = index
        while start > max(0, index - _PARAGRAPH_LINES) and lines[start - 1].strip():
            start -= 1
        before = start - 1
        while before > max(0, start - 5) and not lines[before].strip():
            before -= 1
        if before >= 0 and before < start - 1 and lines[before].rstrip().endswith(":"):
            start = before
            while start > max(0, before - _PARAGRAPH_LINES) and lines[start - 1].strip():
                start -= 1
        end = index
        while end + 1 < min(len(lines), index + _PARAGRAPH_LINES) and lines[end + 1].strip():
            end += 1
        end = self._next_paragraph(end)
        if lines[end - 1].rstrip().endswith(":"):
            end = self._next_paragraph(end - 1)
        return "\n".join(lines[start:end])

    def _next_paragraph(self, end: int) -> int:
        """Where the paragraph after the one ending on line `end` ends (exclusive), a few blank
        lines and at most a dozen lines of text on."""
        lines = self.lines
        following = end + 1
        while following < len(lines) and not lines[following].strip() and following - end < 5:
            following += 1
        while following < len(lines) and lines[following].strip() and following - end < 15:
            following += 1
        return following


def find_status(text: str) -> str | None:
    """The enhanced status code the text gives, preferring one written next to a reply code,
    and a failure (4.x.x, 5.x.x) to a success."""
    paired = _failure_first(_REPLY_WITH_STATUS.finditer(text), 2)
    return paired or _failure_first(_STATUS.finditer(text), 0)


def find_replycode(text: str) -> int | None:
    """The SMTP reply code the text gives, preferring one written next to a status code, and a
    failure (4xx, 5xx) to a success."""
    code = _failure_first(_REPLY_WITH_STATUS.finditer(text), 1) or _failure_first(
        _REPLY.finditer(text), 1
    )
    return int(code) if code else None


def _failure_first(matches: Iterator[re.Match[str]], group: int) -> str | None:
    """Group `group` of the first match whose code is a failure, else of the first match."""
    first: str | None = None
    for match in matches:
        code = match.group(group)
        if code[0] in "45":
            return code
        first = first or code
    return first


def original_recipients(original: Message | None) -> list[str]:
    return _header_addresses(original, "To")
