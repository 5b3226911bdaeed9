"""From raw bytes to the parts a bounce parser reads: the bounce's own headers, its
human-readable text (up to where the returned message begins), the RFC 3464 per-recipient field
groups, and the headers of the returned message. Broken MIME degrades to plain text, never to an
exception."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from html import unescape

from relay.feedback.bounces.notifications import from_json

__all__ = ["MAX_BYTES", "BounceMessage", "parse_fields", "read_message", "split_mbox"]

# A bounce says what happened in its first part; what follows is the returned message, which
# may be arbitrarily large. Parsing stops here.
MAX_BYTES = 2 * 1024 * 1024

# Messages read from one mbox at most: bounded work on a huge or hostile file.
_MAX_MESSAGES = 100
# Where the next message of an mbox starts: a blank line, then "From sender Thu Apr 29 ...".
_MBOX_FROM = re.compile(rb"\r?\n\r?\n(?=From \S+ +[A-Z][a-z]{2} [A-Z][a-z]{2} +\d)")
_RETURNED = frozenset({"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"})
_REPORT = frozenset({"message/delivery-status", "message/global-delivery-status"})
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*)$")
# Lines MTAs put between their explanation and the returned message.
_SEPARATOR = re.compile(
    r"^\s*(?:"
    r"(?:-{2,}|={2,}|_{2,}|\*{2,}|#{2,}).*\b(?:original|returned|undelivered|unsent|rejected|bounced"
    r"|copy of|message follows)\b.*"
    r"|[>|]?\s*(?:this is a copy of|below this line is a copy|original message follows"
    r"|original message headers?|headers of the original|message headers follow"
    r"|returned message|unsent message below|undelivered message|the message follows"
    r"|content-type: message/rfc822"
    r"|(?:original message|returned mail|bounced e-?mail)\s*:?\s*-*\s*$)"
    r".*)$",
    re.IGNORECASE,
)
_HEADER_START = re.compile(
    r"^(Return-Path|Received|Message-I[dD]|Delivered-To|DKIM-Signature|X-Original-To):", re.I
)
# MIME parts nested deeper than this are not read (no bounce nests more than a few levels).
_MAX_DEPTH = 16
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# How far into a boundary-less multipart body its first delimiter line is looked for.
_BOUNDARY_SEARCH_LINES = 20
_TAG = re.compile(r"<(br|p|div|tr|li)\b[^>]*>|<[^>]+>", re.IGNORECASE)


@dataclass(slots=True)
class BounceMessage:
    headers: Message
    text: str = ""  # the explanation, up to the returned message
    reports: list[dict[str, str]] = field(default_factory=list)  # one per recipient group
    original: Message | None = None  # the returned message's headers
    feedback_report: dict[str, str] | None = None  # message/feedback-report fields (ARF)


def split_mbox(raw: bytes) -> list[bytes]:
    """The messages of `raw`: several when it is an mbox (bounces saved one after another,
    each after a "From " line), else `raw` itself."""
    if not raw.startswith(b"From "):
        return [raw]
    return _MBOX_FROM.split(raw[:MAX_BYTES], maxsplit=_MAX_MESSAGES - 1)


def read_message(raw: bytes) -> BounceMessage:
    raw = raw[:MAX_BYTES]
    texts: list[str] = []
    try:
        message = email.message_from_bytes(raw, policy=compat32)
        bounce = BounceMessage(headers=message)
        _walk(message, bounce, texts, depth=0)
    except RecursionError:  # MIME nested deeper than the standard parser follows
        head, *body = _HEAD_END.split(raw, maxsplit=1)
        headers = head.decode("ascii", errors="replace")
        bounce = BounceMessage(HeaderParser(policy=compat32).parsestr(headers, headersonly=True))
        texts = [b"".join(body).decode("utf-8", errors="replace")]
    text = "\n".join(texts)
    explanation, returned = _split_returned(text)
    bounce.text = explanation
    if bounce.original is None and returned:
        bounce.original = _headers_from_text(returned)
    if not bounce.reports:
        bounce.reports = parse_fields(explanation)
    if not bounce.reports and bounce.feedback_report is None and "{" in text:
        notification = from_json(text)
        if notification is not None:
            bounce.reports, complained = notification
            if complained:
                bounce.feedback_report = {"original-rcpt-to": ", ".join(complained)}
    return bounce


def _walk(part: Message, bounce: BounceMessage, texts: list[str], *, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    top = depth == 0
    ctype = part.get_content_type()
    if ctype.startswith("multipart/") and not part.is_multipart():
        part = _with_boundary(part)
    if part.is_multipart() and ctype not in _RETURNED and ctype not in _REPORT:
        subparts = part.get_payload()
        if isinstance(subparts, list):
            alternatives = ctype == "multipart/alternative"
            for sub in subparts:
                if not isinstance(sub, Message):
                    continue
                if alternatives and sub.get_content_type() == "text/html" and texts:
                    continue
                _walk(sub, bounce, texts, depth=depth + 1)
        return
    if ctype in _RETURNED and not top:
        forwarded = _forwarded_report(part)
        if forwarded is not None and not bounce.reports:
            _walk(forwarded, bounce, texts, depth=depth + 1)
            return
        if bounce.original is None:
            bounce.original = _returned_headers(part)
        return
    if ctype in _REPORT:
        bounce.reports.extend(parse_fields(_body_text(part)))
        return
    if ctype == "message/feedback-report":
        groups = parse_fields(_body_text(part), keep_all=True)
        bounce.feedback_report = groups[0] if groups else {}
        return
    if ctype.startswith("text/") or top or ctype == "message/delivery-status":
        body = _body_text(part)
        texts.append(_strip_html(body) if ctype == "text/html" else body)


def _with_boundary(part: Message) -> Message:
    """A multipart whose boundary parameter got lost (folded without indentation, so it
    landed in the body), re-read with the delimiter its body starts with; else as it is."""
    body = str(part.get_payload())
    lines = body.splitlines()[:_BOUNDARY_SEARCH_LINES]
    delimiter = next((line for line in lines if line.startswith("--") and len(line) > 2), "")
    if not delimiter:
        return part
    boundary = delimiter[2:].rstrip().removesuffix("--")
    recovered = email.message_from_string(
        f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n{body}',
        policy=compat32,
    )
    return recovered if recovered.is_multipart() else part


def _body_text(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/* parsed into sub-messages by compat32
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in sub.items())
            for sub in payload
            if isinstance(sub, Message)
        )
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(payload)
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _strip_html(html: str) -> str:
    return unescape(_TAG.sub(lambda m: "\n" if m.group(1) else "", html))


def _forwarded_report(part: Message) -> Message | None:
    """The DSN a message/rfc822 part holds when it is a bounce passed on (forwarded, fetched
    and wrapped) rather than the returned message."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
        if inner.get_content_type() == "multipart/report":
            return inner
    return None


def _returned_headers(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return _headers_from_text(_body_text(part))


def _headers_from_text(text: str) -> Message:
    lines = text.lstrip("\n").splitlines()
    start = next((i for i, line in enumerate(lines) if _FIELD.match(line)), len(lines))
    return HeaderParser(policy=compat32).parsestr("\n".join(lines[start:]), headersonly=True)


def _split_returned(text: str) -> tuple[str, str]:
    """The explanation and the returned message, cut at a separator line, else at the first
    header block that starts like a message (Received:, Return-Path:, ...)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _SEPARATOR.match(line) or (
            _HEADER_START.match(line)
            and i + 1 < len(lines)
            and (_FIELD.match(lines[i + 1]) or lines[i + 1][:1] in (" ", "\t"))
        ):
            if _SEPARATOR.match(line):
                return "\n".join(lines[:i]), "\n".join(lines[i + 1 :])
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    return text, ""


def parse_fields(text: str, *, keep_all: bool = False) -> list[dict[str, str]]:
    """RFC 3464 field groups (lower-case names) found in `text`: one dict per recipient group,
    each merged over the per-message group. With `keep_all`, every group is returned as is."""
    groups: list[dict[str, str]] = []
    current: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                groups.append(current)
            current, name = {}, ""
            continue
        if line[0] in " \t" and name:
            current[name] += " " + line.strip()
            continue
        match = _FIELD.match(line)
        if match:
            name = match.group(1).lower()
            if name in current:  # groups run together without the blank line between them
                groups.append(current)
                current = {}
            current[name] = match.group(2).strip()
        else:
            name = ""
    if current:
        groups.append(current)
    if keep_all:
        return groups
    per_message: dict[str, str] = {}
    recipients: list[dict[str, str]] = []
    for group in groups:
        if "final-recipient" in group or "original-recipient" in group:
            recipients.append({**per_message, **group})
        elif "reporting-mta" in group or "received-from-mta" in group:
            per_message.update(group)
    return recipients
