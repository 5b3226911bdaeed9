"""The DATA command at the next hop (RFC 5321 §4.1.1.4): relay sends its CRLF-only content
dot-stuffed without aiosmtplib's regular expressions (relay.delivery.smtp_client.send_data), and
a refusal of the DATA command itself counts like a refusal of the data."""

from __future__ import annotations

import random

from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from relay.delivery.smtp_client import data_section
from tests.delivery.helpers import add_mail_domain, assert_delivered, log_lines, submit


def _as_aiosmtplib_sends_it(content: bytes) -> bytes:
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(content)) + b".\r\n"


def test_the_data_section_is_what_aiosmtplib_would_send():
    pieces = [b".", b"..", b"a", b" ", b"\r\n", b"\r\n.", b".\r\n", b"\xc3\xa9", b"\x00"]
    generator = random.Random(5321)
    contents = [b"", b".", b"\r\n", b".\r\n", b"a\r\n.", b"x\r\n.\r\n", b"..\r\n..\r\n"]
    contents += [
        b"".join(generator.choices(pieces, k=generator.randint(1, 40))) for _ in range(5000)
    ]
    for content in contents:
        assert data_section(content) == _as_aiosmtplib_sends_it(content), content


def test_bare_line_endings_are_left_to_aiosmtplib():
    for content in (b"a\nb\r\n", b"a\rb\r\n", b"a\r\n\rb\r\n", b"a\n\r\n", b"a\r\n\n", b"\r"):
        assert data_section(content) is None, content


def test_a_refused_data_command_bounces_the_recipient(dns_server, sink, make_relay):
    add_mail_domain(dns_server, "no-data.test", "127.0.0.1")
    sink.data_command_replies.append("554 5.3.4 no data from you")
    relay = make_relay({"delivery": {"port": sink.port}})
    submit(relay, "news@sender.test", ["ann@no-data.test"], b"Subject: refused\r\n\r\nbody\r\n")

    log = relay.wait_for_log("to=<ann@no-data.test> relay=mx.no-data.test status=bounced")
    assert log_lines(log, "to=<ann@no-data.test>", "dsn=5.3.4", "554 5.3.4 no data from you")
    assert not sink.data_command_replies
    assert [m for m in sink.messages if "ann@no-data.test" in m.rcpt_tos] == []


def test_a_data_command_deferred_is_retried_and_delivered(dns_server, sink, make_relay):
    add_mail_domain(dns_server, "later-data.test", "127.0.0.1")
    sink.data_command_replies.append("451 4.3.2 not now")
    relay = make_relay({"delivery": {"port": sink.port, "retry_schedule": ["1s"]}})
    body = b"Subject: deferred\r\n\r\n.a line with a leading dot\r\nlast line\r\n"
    submit(relay, "news@sender.test", ["bob@later-data.test"], body)

    log = assert_delivered(relay, sink, "bob@later-data.test", body, via="mx.later-data.test")
    assert log_lines(log, "to=<bob@later-data.test>", "status=queued", "451 4.3.2 not now")
    assert not sink.data_command_replies
