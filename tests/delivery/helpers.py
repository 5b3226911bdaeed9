"""Small helpers shared by the delivery scenarios: polling with a deadline, a port that is free
on several loopback addresses (so that several MX hosts share `[delivery] port`), and reading a
DSN (RFC 3464 inside RFC 6522 multipart/report) with the standard `email` package."""

from __future__ import annotations

import email
import email.policy
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage, Message

from tests.support.network import free_port

# aiosmtpd (so the sink) records `MAIL FROM:<>`, the null reverse path, as "<>"; a bare ""
# would mean the same on the wire.
NULL_REVERSE_PATH = ("", "<>")


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail the test when the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    assert condition(), f"still not true after {timeout}s: {what or condition}"


def holds_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether `condition` stays true for `seconds` (to check that something does NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.05)
    return condition()


def shared_port(*hosts: str) -> int:
    """A TCP port that is free on every one of `hosts` (loopback addresses)."""
    for _ in range(50):
        port = free_port(hosts[0])
        probes: list[socket.socket] = []
        try:
            for host in hosts:
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                probes.append(probe)
                probe.bind((host, port))
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
        return port
    raise RuntimeError(f"no port free on all of {hosts}")


def log_lines(log: str, *fragments: str) -> list[str]:
    """The lines of a relay log that contain every one of `fragments`."""
    return [line for line in log.splitlines() if all(part in line for part in fragments)]


@dataclass
class Dsn:
    """A parsed delivery status notification."""

    message: EmailMessage
    notification: str  # the human-readable text/plain part
    per_message: Message
    per_recipient: list[Message]
    original_headers: str  # the text/rfc822-headers part

    def recipient(self, address: str) -> Message:
        (fields,) = [
            block
            for block in self.per_recipient
            if block["Final-Recipient"].lower() == f"rfc822; {address}".lower()
        ]
        return fields


def parse_dsn(data: bytes) -> Dsn:
    """Parse a DSN and check its RFC 6522 structure: multipart/report with report-type
    delivery-status, made of a human part, a message/delivery-status part and the headers."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/report", message["Content-Type"]
    assert message.get_param("report-type") == "delivery-status", message["Content-Type"]
    assert not message.defects, message.defects
    parts = list(message.iter_parts())
    types = [part.get_content_type() for part in parts]
    assert types == ["text/plain", "message/delivery-status", "text/rfc822-headers"], types
    human, status, headers = parts
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    assert len(blocks) >= 2, blocks
    return Dsn(
        message=message,
        notification=human.get_content(),
        per_message=blocks[0],
        per_recipient=blocks[1:],
        original_headers=headers.get_content(),
    )
