"""Complaint reports: ARF feedback-loop reports (RFC 5965), authentication-failure reports
(RFC 6591) and Microsoft's JMRP-style reports, read into one `ComplaintRecord` per
complained-about recipient.

    parse(raw) -> list[ComplaintRecord]     [] when `raw` is not a complaint report
    reported_headers(raw) -> Message | None the reported message's headers (to find its sender)

Where each value comes from:

    feedback_type        Feedback-Type, lower case ("abuse" for the Microsoft variant)
    original_recipient   each Original-Rcpt-To (Microsoft: the enclosed message's
                         X-HmXmrOriginalRecipient); else the first address in the enclosed
                         message's To:; None when the report names nobody
    original_message_id  the enclosed message's Message-ID, without <>, when it is a well-formed
                         msg-id (RFC 5322 §3.6.4); the enclosed part is the report's
                         message/rfc822 or text/rfc822-headers part
    source_ip            Source-IP (the address only); for Microsoft, the Subject's address
    reported_domain      the first Reported-Domain
    fields               every RFC 5965 / RFC 6591 report field, named as mail-auth names them
                         (see `_FIELDS`), plus "headers" (a text/rfc822-headers part, verbatim)

Removal-Recipient (an opt-out report's address to remove) is kept in fields["removal_recipient"]
and is not an original recipient: the report may name it without saying it received the message.

Malformed input never raises: the stdlib parser (compat32 policy) records defects instead, and
whatever could be read is returned.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from collections.abc import Iterable
from datetime import UTC
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime
from enum import Enum, auto
from typing import Any, NamedTuple

from relay.feedback.model import ComplaintRecord

__all__ = ["parse", "reported_headers"]


class _Kind(Enum):
    """How a report field's value is read."""

    TEXT = auto()  # the value, trimmed; the first occurrence counts
    LIST = auto()  # every occurrence, in order
    TOKEN = auto()  # lower case, whitespace collapsed
    INT = auto()  # a decimal number
    DATE = auto()  # an RFC 5322 date, as a Unix timestamp
    IP = auto()  # an IP address, comments after it dropped
    MTA = auto()  # a host name, the "dns;" type dropped


_FIELDS: dict[str, tuple[str, _Kind]] = {
    # RFC 5965 §3.1-3.3
    "feedback-type": ("feedback_type", _Kind.TOKEN),
    "user-agent": ("user_agent", _Kind.TEXT),
    "version": ("version", _Kind.INT),
    "arrival-date": ("arrival_date", _Kind.DATE),
    "received-date": ("arrival_date", _Kind.DATE),  # the pre-RFC name of Arrival-Date
    "incidents": ("incidents", _Kind.INT),
    "original-envelope-id": ("original_envelope_id", _Kind.TEXT),
    "original-mail-from": ("original_mail_from", _Kind.TEXT),
    "reporting-mta": ("reporting_mta", _Kind.MTA),
    "source-ip": ("source_ip", _Kind.IP),
    "authentication-results": ("authentication_results", _Kind.LIST),
    "original-rcpt-to": ("original_rcpt_to", _Kind.TEXT),
    "reported-domain": ("reported_domain", _Kind.LIST),
    "reported-uri": ("reported_uri", _Kind.LIST),
    "removal-recipient": ("removal_recipient", _Kind.LIST),  # RFC 5965 Appendix B.2
    # RFC 6591 §3.1
    "auth-failure": ("auth_failure", _Kind.TOKEN),
    "delivery-result": ("delivery_result", _Kind.TOKEN),
    "dkim-adsp-dns": ("dkim_adsp_dns", _Kind.TEXT),
    "dkim-canonicalized-body": ("dkim_canonicalized_body", _Kind.TEXT),
    "dkim-canonicalized-header": ("dkim_canonicalized_header", _Kind.TEXT),
    "dkim-domain": ("dkim_domain", _Kind.TEXT),
    "dkim-identity": ("dkim_identity", _Kind.TEXT),
    "dkim-selector": ("dkim_selector", _Kind.TEXT),
    "dkim-selector-dns": ("dkim_selector_dns", _Kind.TEXT),
    "identity-alignment": ("identity_alignment", _Kind.TOKEN),
    "source-port": ("source_port", _Kind.INT),
    "spf-dns": ("spf_dns", _Kind.TEXT),
}
"""Report field (lower case) -> (key in ComplaintRecord.fields, how its value is read)."""

_DEFAULT_INCIDENTS = 1  # RFC 5965 §3.2: "If this field is omitted, a value of 1 is assumed"

_ENCLOSED_TYPES = frozenset({"message/rfc822", "text/rfc822-headers"})

# Microsoft's Junk Mail Reporting Program (and Amazon SES forwarding it) sends multipart/mixed
# with only the reported message attached: no message/feedback-report part.
_MICROSOFT_RECIPIENT = "x-hmxmroriginalrecipient"
_MICROSOFT_SENDERS = frozenset({"staff@hotmail.com", "complaints@email-abuse.amazonses.com"})
_MICROSOFT_SUBJECT = re.compile(r"complaint about message from (\S+)", re.IGNORECASE)

_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")
_MSG_ID = re.compile(r"<([^<>@\s]+@[^<>@\s]+)>")
_FOLD = re.compile(r"\r?\n")
_RFC822_TYPE = re.compile(r"^\s*rfc822\s*;", re.IGNORECASE)  # "rfc822; user@example.com"


def parse(raw: bytes) -> list[ComplaintRecord]:
    """One record per complained-about recipient (one with original_recipient None when the
    report names nobody); [] when `raw` is not a complaint report or too broken to tell."""
    try:
        return _parse(message_from_bytes(raw, policy=compat32))
    except RecursionError:  # MIME nested deeper than the stdlib parser follows: not readable
        return []


def reported_headers(raw: bytes) -> Message | None:
    """The headers of the message a complaint report is about (Return-Path, DKIM-Signature,
    From, ...); None when `raw` is not a report or encloses no message."""
    try:
        report = _report(message_from_bytes(raw, policy=compat32))
    except RecursionError:
        return None
    return report.enclosed if report is not None else None


class _Report(NamedTuple):
    fields: dict[str, Any]
    enclosed: Message | None  # the reported message's headers
    recipients: list[str]  # as the report names them, before the enclosed To: fallback


def _report(message: Message) -> _Report | None:
    return _arf_report(message) or _microsoft_report(message)


def _parse(message: Message) -> list[ComplaintRecord]:
    report = _report(message)
    if report is None:
        return []
    fields, enclosed, recipients = report
    if not recipients and enclosed is not None:
        recipients = _addresses(enclosed, "to")[:1]
    message_id = _message_id(enclosed) if enclosed is not None else None
    named: list[str | None] = [*recipients] or [None]
    return [
        ComplaintRecord(
            feedback_type=fields["feedback_type"],
            original_recipient=recipient,
            original_message_id=message_id,
            source_ip=fields["source_ip"],
            reported_domain=next(iter(fields["reported_domain"]), None),
            fields=copy.deepcopy(fields),
        )
        for recipient in named
    ]


def _arf_report(message: Message) -> _Report | None:
    """RFC 5965 / RFC 6591: a message/feedback-report part with a Feedback-Type."""
    found = _feedback_part(message)
    if found is None:
        return None
    container, report = found
    fields = _read_fields(report.raw_items())
    if fields["feedback_type"] is None:
        return None
    enclosed, fields["headers"] = _enclosed(container)
    return _Report(fields, enclosed, _addresses(report, "original-rcpt-to"))


def _microsoft_report(message: Message) -> _Report | None:
    """Microsoft JMRP: multipart/mixed, the reported message carrying X-HmXmrOriginalRecipient
    (or the known sender and Subject); the source IP is in the Subject."""
    if message.get_content_type() != "multipart/mixed":
        return None
    enclosed, _ = _enclosed(message)
    if not _is_microsoft_report(message, enclosed):
        return None
    fields = _read_fields([])
    fields["feedback_type"] = "abuse"
    subject = _MICROSOFT_SUBJECT.search(_header(message, "subject") or "")
    fields["source_ip"] = _ip(subject.group(1)) if subject else None
    recipients = _addresses(enclosed, _MICROSOFT_RECIPIENT) if enclosed is not None else []
    return _Report(fields, enclosed, recipients)


def _feedback_part(message: Message) -> tuple[Message, Message] | None:
    """The multipart holding a message/feedback-report part, and that part's fields (which the
    parser reads as the headers of a message/* part's inner message)."""
    for part in message.walk():
        if part.get_content_maintype() != "multipart":
            continue
        for child in _children(part):
            if child.get_content_type() == "message/feedback-report":
                inner = _children(child)
                return (part, inner[0]) if inner else None
    return None


def _enclosed(container: Message) -> tuple[Message | None, str | None]:
    """The reported message's headers, and the text of a text/rfc822-headers part."""
    for child in _children(container):
        content_type = child.get_content_type()
        if content_type not in _ENCLOSED_TYPES:
            continue
        if content_type == "message/rfc822":
            inner = _children(child)
            return (inner[0] if inner else None), None
        data = child.get_payload(decode=True)
        if not isinstance(data, bytes):
            return None, None
        headers = BytesHeaderParser(policy=compat32).parsebytes(data)
        return headers, data.decode("utf-8", "replace").replace("\r\n", "\n")
    return None, None


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def _is_microsoft_report(message: Message, enclosed: Message | None) -> bool:
    if enclosed is not None and _header(enclosed, _MICROSOFT_RECIPIENT) is not None:
        return True
    senders = {address.lower() for _, address in getaddresses([_header(message, "from") or ""])}
    subject = _header(message, "subject") or ""
    return bool(senders & _MICROSOFT_SENDERS) and _MICROSOFT_SUBJECT.search(subject) is not None


def _read_fields(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        key: [] if kind is _Kind.LIST else None for key, kind in _FIELDS.values()
    }
    fields["incidents"] = _DEFAULT_INCIDENTS
    fields["headers"] = None
    seen: set[str] = set()
    for name, raw in pairs:
        spec = _FIELDS.get(name.strip().lower())
        if spec is None:
            continue
        key, kind = spec
        value = _value(kind, raw.replace("\r\n", "\n").strip())
        if value is None:
            continue
        if kind is _Kind.LIST:
            fields[key].append(value)
        elif key not in seen:
            seen.add(key)
            fields[key] = value
    return fields


def _value(kind: _Kind, text: str) -> str | int | None:
    if not text:
        return None
    if kind is _Kind.TOKEN:
        return " ".join(text.lower().split())
    if kind is _Kind.INT:
        return int(text) if text.isdecimal() else None
    if kind is _Kind.DATE:
        return _timestamp(text)
    if kind is _Kind.IP:
        return _ip(text.split()[0])
    if kind is _Kind.MTA:
        name_type, _, name = text.partition(";")
        return (name.strip() or None) if name_type.strip().lower() == "dns" else text
    return text


def _timestamp(text: str) -> int | None:
    try:
        moment = parsedate_to_datetime(" ".join(text.split()))
        if moment.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322 §3.3)
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


def _header(message: Message, name: str) -> str | None:
    """The first `name` header, unfolded; raw, so undecodable bytes never raise."""
    for key, value in message.raw_items():
        if key.strip().lower() == name:
            return _FOLD.sub("", str(value)).strip()
    return None


def _addresses(message: Message, name: str) -> list[str]:
    """Every distinct address in every `name` header, in order ("rfc822;" types dropped)."""
    values = [
        _RFC822_TYPE.sub("", _FOLD.sub("", str(value)))
        for key, value in message.raw_items()
        if key.strip().lower() == name
    ]
    found: list[str] = []
    for _, address in getaddresses(values):
        if _ADDRESS.fullmatch(address) and address not in found:
            found.append(address)
    return found


def _message_id(enclosed: Message) -> str | None:
    match = _MSG_ID.search(_header(enclosed, "message-id") or "")
    return match.group(1) if match else None
