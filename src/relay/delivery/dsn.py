"""Delivery status notifications (RFC 3464 inside RFC 6522 multipart/report).

The DSN goes to the envelope sender from the null reverse path, marked
`Auto-Submitted: auto-generated` (RFC 3834 §5) so that it never causes another notice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from email.utils import formatdate, make_msgid

from relay.spool.records import DeliveryResult, Envelope

__all__ = ["FailedRecipient", "build_dsn"]

_MAX_FIELD = 900


@dataclass(frozen=True, slots=True)
class FailedRecipient:
    address: str
    result: DeliveryResult
    expired: bool = False


def _address_type(address: str) -> str:
    # RFC 6533 §3: "utf-8" address type for internationalised addresses.
    return f"rfc822; {address}" if address.isascii() else f"utf-8; {address}"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_MAX_FIELD]


def _final_status(failure: FailedRecipient) -> str:
    """The Status of a failed recipient: the last attempt's, except that one expired after
    temporary failures is 4.4.7 (delivery time expired), or 5.7.10 (encryption needed, RFC 8461
    §5) when its destination demanded TLS it never got."""
    status = failure.result.status
    if not failure.expired:
        return status
    return "5.7.10" if status.endswith(".7.10") else "4.4.7"


def _recipient_fields(failure: FailedRecipient, attempted_at: float) -> str:
    result = failure.result
    fields = [
        f"Final-Recipient: {_address_type(failure.address)}",
        "Action: failed",
        f"Status: {_final_status(failure)}",
    ]
    if result.remote_mta:
        fields.append(f"Remote-MTA: dns; {result.remote_mta}")
    diagnostic = _one_line(result.diagnostic)
    if diagnostic[:3].isdigit():
        fields.append(f"Diagnostic-Code: smtp; {diagnostic}")
    else:
        fields.append(f"Diagnostic-Code: X-Relay; {diagnostic}")
    fields.append(f"Last-Attempt-Date: {formatdate(attempted_at)}")
    return "\r\n".join(fields) + "\r\n"


def _original_headers(content: bytes) -> bytes:
    end = content.find(b"\r\n\r\n")
    headers = content if end < 0 else content[: end + 2]
    return headers if headers.endswith(b"\r\n") else headers + b"\r\n"


def build_dsn(
    envelope: Envelope,
    content: bytes,
    failures: list[FailedRecipient],
    reporting_mta: str,
    attempted_at: float,
) -> bytes:
    """A non-delivery report for `failures` of the message `envelope`/`content`."""
    boundary = f"=_relay_dsn_{secrets.token_hex(12)}"
    expired = any(failure.expired for failure in failures)
    reasons = "\r\n".join(
        f"<{failure.address}>: {_one_line(failure.result.diagnostic)}" for failure in failures
    )
    why = (
        "could not be delivered before its queue lifetime ran out"
        if expired
        else "could not be delivered"
    )
    human = (
        f"This is the mail system at host {reporting_mta}.\r\n\r\n"
        f"Your message (queue id {envelope.queue_id}) {why} to the following "
        f"recipient(s). The reason given for each is below.\r\n\r\n{reasons}\r\n"
    )
    per_message = (
        f"Reporting-MTA: dns; {reporting_mta}\r\n"
        f"X-Relay-Queue-ID: {envelope.queue_id}\r\n"
        f"Arrival-Date: {formatdate(envelope.received_at)}\r\n"
    )
    per_recipient = "\r\n".join(_recipient_fields(f, attempted_at) for f in failures)
    head = (
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n"
        f"To: <{envelope.mail_from}>\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {formatdate(localtime=True)}\r\n"
        f"Message-ID: {make_msgid(domain=reporting_mta)}\r\n"
        f"Auto-Submitted: auto-generated\r\n"
        f"MIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        f"\r\n"
        f"This is a MIME-encapsulated delivery status notification.\r\n"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"Content-Description: Notification\r\n\r\n"
        f"{human}"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: message/delivery-status\r\n"
        f"Content-Description: Delivery report\r\n\r\n"
        f"{per_message}\r\n{per_recipient}"
        f"\r\n--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n"
        f"Content-Description: Undelivered message headers\r\n\r\n"
    )
    tail = f"\r\n--{boundary}--\r\n"
    return head.encode("utf-8") + _original_headers(content) + tail.encode()
