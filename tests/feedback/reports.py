"""Feedback as receivers send it, written out for a test: RFC 3464 bounces, ARF complaint
reports (RFC 5965) and requests to the unsubscribe mailbox."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

BOUNDARY = "=_report_boundary"


def original(
    recipient: str | None,
    *,
    sender: str = "news@shop.example",
    message_id: str = "<m1@shop.example>",
    return_path: str | None = None,
) -> bytes:
    """The message a bounce or report is about."""
    message = EmailMessage()
    if return_path is not None:
        message["Return-Path"] = f"<{return_path}>"
    message["From"] = f"Shop News <{sender}>"
    if recipient is not None:
        message["To"] = recipient
    message["Subject"] = "Spring offers"
    message["Message-ID"] = message_id
    message.set_content("Our spring offers.\n")
    return message.as_bytes(policy=email.policy.SMTP)


def _report(kind: str, headers: str, text: str, fields: str, enclosed: str) -> bytes:
    return (
        f"{headers}"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={kind}; boundary="{BOUNDARY}"\r\n'
        "\r\n"
        f"--{BOUNDARY}\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        f"{text}\r\n"
        f"--{BOUNDARY}\r\n"
        f"Content-Type: message/{kind}\r\n"
        "\r\n"
        f"{fields}"
        f"--{BOUNDARY}\r\n"
        f"{enclosed}"
        f"--{BOUNDARY}--\r\n"
    ).encode()


def bounce(recipient: str, status: str, diagnostic: str, about: bytes) -> bytes:
    """A DSN (RFC 3464) from a receiving MTA saying `recipient` failed with `status`."""
    action = "failed" if status.startswith("5") else "delayed"
    headers = about.split(b"\r\n\r\n")[0].decode()
    return _report(
        "delivery-status",
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.us>\r\n"
        "To: bounces@shop.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-1@mx.example.us>\r\n",
        f"Your message could not be delivered to <{recipient}>.",
        "Reporting-MTA: dns; mx.example.us\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {diagnostic}\r\n",
        f"Content-Type: text/rfc822-headers\r\n\r\n{headers}\r\n",
    )


def arf(about: bytes, *, original_rcpt_to: str | None, feedback_type: str = "abuse") -> bytes:
    """An ARF report (RFC 5965) enclosing the complained-about message."""
    rcpt_to = f"Original-Rcpt-To: {original_rcpt_to}\r\n" if original_rcpt_to else ""
    return _report(
        "feedback-report",
        "From: Feedback Loop <fbl@isp.example>\r\n"
        "To: fbl@relay.test\r\n"
        "Subject: Complaint about a message\r\n"
        "Message-ID: <arf-1@isp.example>\r\n",
        "This is an email abuse report.",
        f"Feedback-Type: {feedback_type}\r\n"
        "User-Agent: isp-fbl/1.0\r\n"
        "Version: 1\r\n"
        "Source-IP: 192.0.2.10\r\n"
        "Reported-Domain: shop.example\r\n"
        f"{rcpt_to}",
        f"Content-Type: message/rfc822\r\n\r\n{about.decode()}",
    )


def unsubscribe_request(token: str) -> bytes:
    """What a mail client sends for `mailto:unsubscribe@<domain>?subject=unsubscribe%20<token>`."""
    message = EmailMessage()
    message["From"] = "ann@example.us"
    message["To"] = "unsubscribe@relay.test"
    message["Subject"] = f"unsubscribe {token}"
    message["Message-ID"] = "<unsub-1@example.us>"
    message.set_content("")
    return message.as_bytes(policy=email.policy.SMTP)
