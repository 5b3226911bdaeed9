"""Small helpers shared by the delivery scenarios: polling with a deadline, a port that is free
on several loopback addresses (so that several MX hosts share `[delivery] port`), mail domains in
the test DNS, submitting and checking a delivery, the two MX sinks of the bounce scenarios, and
reading a DSN (RFC 3464 inside RFC 6522 multipart/report) with the standard `email` package, and
the shipped backoff table with durations short enough for a test."""

from __future__ import annotations

import email
import email.policy
import socket
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import tomli_w

from relay.delivery.backoff import DEFAULT_BACKOFF_FILE
from tests.support.dns_server import DnsServer
from tests.support.network import free_port
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess
from tests.support.sink import Sink, SinkMessage

# aiosmtpd (so the sink) records `MAIL FROM:<>`, the null reverse path, as "<>"; a bare ""
# would mean the same on the wire.
NULL_REVERSE_PATH = ("", "<>")


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Poll `condition` until it holds; fail the test when the deadline passes."""
    held = poll(lambda: True if condition() else None, timeout)
    assert held, f"still not true after {timeout}s: {what or condition}"


def holds_for(condition: Callable[[], bool], seconds: float) -> bool:
    """Whether `condition` stays true for `seconds` (to check that something does NOT happen)."""
    broke = poll(lambda: None if condition() else True, seconds)
    return broke is None


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


def add_mail_domain(dns_server: DnsServer, domain: str, address: str) -> None:
    """Publish `domain` in the test DNS with one MX host, `mx.<domain>`, at `address`."""
    dns_server.add(f"{domain}. IN MX 10 mx.{domain}.", f"mx.{domain}. IN A {address}")


def submit(relay: RelayProcess, sender: str, recipients: list[str], body: bytes) -> None:
    """Submit one message to relay over SMTP; smtplib raises if relay refuses it."""
    with relay.smtp() as client:
        client.sendmail(sender, recipients, body)


def assert_delivered(relay: RelayProcess, sink: Sink, recipient: str, body: bytes, via: str) -> str:
    """`sink` received one message, `body` for `recipient` alone; relay logged its delivery through
    the host `via` and removed the queue file. Returns the log."""
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == [recipient]
    assert message.data.endswith(body)
    log = relay.wait_for_log(f"to=<{recipient}> relay={via} status=delivered")
    wait_until(lambda: not relay.queue_files(), 10, "queue file removed after delivery")
    return log


# The bounce scenarios: the recipient's domain has its MX at DESTINATION_HOST, the sender's
# domain at SENDERS_MX_HOST, where the DSN arrives; both MX listen on one port.
DESTINATION_HOST = "127.0.0.1"
SENDERS_MX_HOST = "127.0.0.2"


@dataclass
class BounceMx:
    """The MX sinks of a bounce scenario, on one port."""

    port: int
    destination: Sink | None  # None: nothing listens at DESTINATION_HOST
    senders_mx: Sink

    def relay_config(self, **delivery: Any) -> dict[str, Any]:
        """A relay config that delivers to these sinks, with further `[delivery]` settings."""
        return {"delivery": {"port": self.port, **delivery}}


def destination_and_senders_mx(
    dns_server: DnsServer,
    make_sink: Callable[..., Sink],
    destination_domain: str | None,
    sender_domain: str,
    *,
    destination_listens: bool = True,
) -> BounceMx:
    """Start the two MX sinks and publish both domains in the test DNS (the destination's only
    when `destination_domain` is given; otherwise the test publishes its own records)."""
    port = shared_port(DESTINATION_HOST, SENDERS_MX_HOST)
    destination = make_sink(host=DESTINATION_HOST, port=port) if destination_listens else None
    senders_mx = make_sink(host=SENDERS_MX_HOST, port=port)
    if destination_domain is not None:
        add_mail_domain(dns_server, destination_domain, DESTINATION_HOST)
    add_mail_domain(dns_server, sender_domain, SENDERS_MX_HOST)
    return BounceMx(port, destination, senders_mx)


def receive_dsn(senders_mx: Sink, sender: str, timeout: float = 20.0) -> tuple[SinkMessage, Dsn]:
    """Wait for the one DSN at the sender's MX; check its envelope and return it raw and parsed."""
    (notice,) = senders_mx.wait_for(1, timeout=timeout)
    assert notice.mail_from in NULL_REVERSE_PATH, "a DSN comes from <> (RFC 5321 §4.5.5)"
    assert notice.rcpt_tos == [sender]
    return notice, parse_dsn(notice.data)


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


def backoff_file(directory: Path, durations: dict[str, str], **recovery: Any) -> Path:
    """The shipped config/backoff.toml with each rule's `for` set by its action (e.g.
    {"pause-sender": "1h", "suspend": "3s"}) and [recovery] keys replaced: a [delivery]
    backoff_file for stories that must take seconds, not minutes."""
    table = tomllib.loads(DEFAULT_BACKOFF_FILE.read_text(encoding="utf-8"))
    table["recovery"] = {**table.get("recovery", {}), **recovery}
    for rule in table["rules"]:
        if "for" in rule:
            rule["for"] = durations[rule["action"]]
    path = directory / "backoff.toml"
    path.write_text(tomli_w.dumps(table))
    return path
