"""`classify`: raw message → one BounceRecord per recipient it reports on."""

from __future__ import annotations

import re
from dataclasses import replace
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

from relay.feedback.bounces import reasons
from relay.feedback.bounces.extract import (
    Finding,
    find_replycode,
    find_status,
    findings,
    has_smtp_evidence,
    original_recipients,
)
from relay.feedback.bounces.message import MAX_BYTES, BounceMessage, read_message, split_mbox
from relay.feedback.model import BounceRecord
from relay.rewrite.verp import parse_verp

__all__ = ["classify"]

_DAEMON = re.compile(
    r"^(mailer-daemon|post_?master|mail-daemon|mailer_daemon|mmdf|mail delivery|bounce|"
    r"mdaemon|nobody|root|daemon|administrator|no-?reply)",
    re.IGNORECASE,
)
# Senders that are the mail system itself: what they send is a bounce, never an auto-reply.
_MTA = re.compile(r"^(mailer-daemon|post_?master|mail-daemon|mailer_daemon)(@|$)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (status|failure|notification|report|has failed|problem)|"
    r"returned mail|mail delivery|failure notice|could not be delivered|delivery failed|"
    r"non[- ]?delivery|rejected|bounce|not delivered|failed|error|warning|delayed|returned|"
    r"loop alert",
    re.IGNORECASE,
)
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|abwesen|"
    r"away from|auto:|autoreply|auto-reply)",
    re.IGNORECASE,
)
_TEMPORARY = re.compile(r"\b(temporar|try again|deferred|delayed|will be retried|retrying)", re.I)
_ID = re.compile(r"<([^<>\s]+)>")
_NOT_FAILURE_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
# How much of the explanation may identify the MTA that wrote it.
_SIGNATURE_CHARS = 4000


def classify(raw: bytes, verp_recipient: str | None = None) -> list[BounceRecord]:
    """The records of one message (of each, in an mbox); [] when it is not a bounce.
    `verp_recipient` is the address the message was sent to (its envelope recipient): when it
    is a relay VERP address, the queue id and recipient it names win over what the body
    claims."""
    # Mail arrives over SMTP with CRLF, corpora and mbox files often with LF: read them alike.
    raw = raw[:MAX_BYTES].replace(b"\r\n", b"\n")
    bounces = [read_message(message) for message in split_mbox(raw)]
    records = [record for bounce in bounces for record in _records(bounce)]
    bounce = bounces[0]
    verp = parse_verp(verp_recipient) if verp_recipient else None
    if verp is None:
        return records
    if not records and _looks_like_bounce(bounce.headers):
        records = [_record(Finding(recipient=None, context=bounce.text), bounce)]
    return [
        _replace(record, verp.recipient or record.recipient, verp.queue_id)
        for record in records[:1]
    ]


def _records(bounce: BounceMessage) -> list[BounceRecord]:
    if bounce.feedback_report is not None:
        recipient = _address(bounce.feedback_report.get("original-rcpt-to", ""))
        return [_fixed(recipient, "feedback", bounce)]
    if not bounce.reports and _is_autoreply(bounce.headers):
        return [
            _fixed(parseaddr(str(bounce.headers.get("From", "")))[1] or None, "vacation", bounce)
        ]
    found = findings(bounce)
    if not found and not bounce.reports:
        if not _looks_like_bounce(bounce.headers) or not has_smtp_evidence(bounce.text):
            return []
        found = [
            Finding(recipient=address, context=bounce.text)
            for address in original_recipients(bounce.original)
        ]
    elif not bounce.reports and not _looks_like_bounce(bounce.headers):
        return []
    commandless = reasons.names_no_command(_signature(bounce))
    return [_record(finding, bounce, commandless=commandless) for finding in found]


def _signature(bounce: BounceMessage) -> str:
    """What identifies the MTA that wrote the bounce: its headers and the start of its text."""
    headers = "\n".join(f"{name}: {value}" for name, value in bounce.headers.items())
    return f"{headers}\n{bounce.text[:_SIGNATURE_CHARS]}".lower()


def _record(finding: Finding, bounce: BounceMessage, *, commandless: bool = False) -> BounceRecord:
    diagnostic = reasons.normalise(finding.diagnostic)
    context = reasons.normalise(finding.context or bounce.text)
    status = _status(finding, context)
    replycode = finding.replycode or find_replycode(finding.context)
    reason = _reason(finding, diagnostic, context, status, commandless=commandless)
    if status is None or (status.endswith(".0.0") and reason not in ("onhold", "undefined")):
        status = finding.status or _default_status(reason, status, replycode, finding, context)
    return BounceRecord(
        recipient=finding.recipient,
        reason=reason,
        category=reasons.by_name(reason).category,
        hard=reasons.is_hard(reason, status, replycode),
        status=status,
        replycode=replycode,
        diagnostic=finding.diagnostic,
        original_message_id=_message_id(bounce.original),
    )


def _status(finding: Finding, context: str) -> str | None:
    """The most specific status: the DSN's, unless it is a bare X.0.0 and the diagnostic or the
    text has a specific one of the same class."""
    said = find_status(finding.diagnostic) or find_status(context)
    if finding.status and not finding.status.endswith(".0.0"):
        return finding.status
    if said and (finding.status is None or said[0] == finding.status[0]):
        return said
    return finding.status


def _reason(
    finding: Finding, diagnostic: str, context: str, status: str | None, *, commandless: bool
) -> str:
    if finding.action in _NOT_FAILURE_ACTIONS:
        return "delivered"
    command = reasons.smtp_command(f"{finding.context}\n{finding.diagnostic}")
    evidence = reasons.Evidence(
        text=diagnostic,
        status=status,
        command=None if commandless else command,
        action=finding.action,
        domain=(finding.recipient or "").rpartition("@")[2].lower(),
        kind=finding.kind,
        commandless=commandless,
    )
    said = reasons.decide(evidence)
    if said not in ("onhold", "undefined") or context == diagnostic:
        return said
    # The diagnostic said too little: the explanation around the recipient may say more.
    wider = reasons.decide(replace(evidence, text=context))
    return wider if wider not in ("onhold", "undefined") else said


def _default_status(
    reason: str, status: str | None, replycode: int | None, finding: Finding, context: str
) -> str:
    default = reasons.by_name(reason).default_status or "5.0.0"
    temporary = (
        (replycode is not None and replycode < 500)
        or finding.action == "delayed"
        or (status or "").startswith("4")
        or (replycode is None and status is None and bool(_TEMPORARY.search(context)))
    )
    permanent = (replycode or 0) >= 500 or (status or "").startswith("5")
    if default[0] in "45":
        default = ("4" if temporary and not permanent else "5") + default[1:]
    return default


def _fixed(recipient: str | None, reason: str, bounce: BounceMessage) -> BounceRecord:
    return BounceRecord(
        recipient=recipient,
        reason=reason,
        category=reasons.by_name(reason).category,
        hard=False,
        status=None,
        replycode=None,
        original_message_id=_message_id(bounce.original),
    )


def _replace(record: BounceRecord, recipient: str | None, queue_id: str) -> BounceRecord:
    return BounceRecord(
        recipient=recipient,
        reason=record.reason,
        category=record.category,
        hard=record.hard,
        status=record.status,
        replycode=record.replycode,
        diagnostic=record.diagnostic,
        original_message_id=record.original_message_id,
        queue_id=queue_id,
    )


def _looks_like_bounce(headers: Message) -> bool:
    sender = str(headers.get("From", ""))
    name, address = parseaddr(sender)
    return bool(
        _DAEMON.match(address)
        or _DAEMON.match(name)
        or _BOUNCE_SUBJECT.search(_subject(headers))
        or headers.get_content_type() == "multipart/report"
        or headers.get("X-Failed-Recipients")
    )


def _is_autoreply(headers: Message) -> bool:
    if _MTA.match(parseaddr(str(headers.get("From", "")))[1]):
        return False
    auto = str(headers.get("Auto-Submitted", "")).lower()
    return bool(
        auto.startswith("auto-replied")
        or headers.get("X-Autoreply")
        or headers.get("X-Autorespond")
        or str(headers.get("Precedence", "")).lower() == "auto_reply"
        or _AUTOREPLY_SUBJECT.search(_subject(headers))
    )


def _subject(headers: Message) -> str:
    """The Subject with its RFC 2047 encoded words decoded; as it is when they are broken."""
    value = str(headers.get("Subject", ""))
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError):
        return value


def _address(value: str) -> str | None:
    found = [address for _, address in getaddresses([value]) if "@" in address]
    return found[0] if found else None


def _message_id(original: Message | None) -> str | None:
    if original is None:
        return None
    match = _ID.search(str(original.get("Message-ID", "")))
    return match.group(1) if match else None
