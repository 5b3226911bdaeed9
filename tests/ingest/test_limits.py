"""Limits and syntax at submission: message size (RFC 1870), recipient count (RFC 5321
§4.5.3.1.10), path syntax and lengths (§4.1.2, §4.5.3.1), and SMTPUTF8 (RFC 6531)."""

from __future__ import annotations

import pytest

from tests.ingest.wire import Wire

MAX_SIZE = 2000
CONTROL = b"Subject: control\r\n\r\nthe message after the refused one\r\n"


def routed(sink, **smtp) -> dict:
    return {
        "smtp": smtp,
        "delivery": {"routes": {"dest.test": f"[127.0.0.1]:{sink.port}"}},
    }


def status(text: bytes) -> bytes:
    return text.split()[0]


def test_mail_with_size_above_the_limit_is_refused_with_552(make_relay, sink):
    relay = make_relay(routed(sink, max_message_size=MAX_SIZE))
    with relay.smtp() as client:
        client.ehlo("client.test")
        code, text = client.docmd("MAIL", f"FROM:<a@sender.test> SIZE={MAX_SIZE + 1}")
        assert (code, status(text)) == (552, b"5.3.4"), text
        # No transaction was started by the refused MAIL.
        code, text = client.docmd("RCPT", "TO:<ann@dest.test>")
        assert (code, status(text)) == (503, b"5.5.1"), text
        # Exactly the limit is fine: the transaction can start.
        code, text = client.docmd("MAIL", f"FROM:<a@sender.test> SIZE={MAX_SIZE}")
        assert (code, status(text)) == (250, b"2.1.0"), text


def test_data_above_the_limit_is_refused_after_the_dot_and_not_queued(make_relay, sink):
    relay = make_relay(routed(sink, max_message_size=MAX_SIZE))
    big = b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n" + (b"y" * 78 + b"\r\n") * 30
    assert len(big) > MAX_SIZE
    with relay.smtp() as client:
        client.ehlo("client.test")
        client.mail("a@sender.test")
        client.rcpt("ann@dest.test")
        code, text = client.data(big)
        assert (code, status(text)) == (552, b"5.3.4"), text
        assert relay.queue_files() == []
        # The session goes on: the next transaction on the same connection is accepted.
        refused = client.sendmail("a@sender.test", ["control@dest.test"], CONTROL)
        assert refused == {}
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == ["control@dest.test"]
    assert b"Subject: big" not in message.data


def test_recipients_above_max_recipients_get_452_and_the_first_ones_are_delivered(make_relay, sink):
    relay = make_relay(routed(sink, max_recipients=3))
    recipients = [f"r{n}@dest.test" for n in range(1, 5)]
    with relay.smtp() as client:
        client.ehlo("client.test")
        client.mail("a@sender.test")
        replies = [client.rcpt(recipient) for recipient in recipients]
        assert [code for code, _ in replies] == [250, 250, 250, 452], replies
        assert status(replies[3][1]) == b"4.5.3", replies
        code, text = client.data(b"Subject: many\r\n\r\nthree of four\r\n")
        assert code == 250, text
    delivered: list[str] = []
    for message in sink.wait_for(1):
        delivered.extend(message.rcpt_tos)
    assert sorted(delivered) == recipients[:3]


def long_domain() -> str:
    label = "d" * 63
    domain = ".".join([label] * 4 + ["test"])
    assert len(domain) > 255
    return domain


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("TO:<a@@b.test>", (501, b"5.1.3")),
        ("TO:<a b@dest.test>", (501, b"5.1.3")),
        (f"TO:<{'l' * 65}@dest.test>", (501, b"5.5.4")),
        (f"TO:<{'l' * 64}@dest.test>", (250, b"2.1.5")),
        (f"TO:<a@{long_domain()}>", (501, b"5.5.4")),
    ],
    ids=["double-at", "space", "local-65", "local-64", "domain-256+"],
)
def test_rcpt_address_syntax_and_length(make_relay, argument, expected):
    relay = make_relay()
    with relay.smtp() as client:
        client.ehlo("client.test")
        client.mail("a@sender.test")
        code, text = client.docmd("RCPT", argument)
        assert (code, status(text)) == expected, text


def test_utf8_sender_without_smtputf8_is_refused_with_550(make_relay):
    relay = make_relay()
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        reply = wire.command("MAIL FROM:<dörte@b.test>".encode())
        assert (reply.code, reply.status) == (550, "5.6.7"), reply
        reply = wire.command("MAIL FROM:<dörte@b.test> SMTPUTF8".encode())
        assert (reply.code, reply.status) == (250, "2.1.0"), reply


def test_utf8_recipient_without_smtputf8_is_refused_with_553(make_relay):
    relay = make_relay()
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        reply = wire.command(b"MAIL FROM:<a@b.test>")
        assert reply.code == 250, reply
        reply = wire.command("RCPT TO:<jürgen@dest.test>".encode())
        assert (reply.code, reply.status) == (553, "5.6.7"), reply
        reply = wire.command(b"DATA")
        assert (reply.code, reply.status) == (503, "5.5.1"), reply


def test_utf8_recipient_with_smtputf8_is_delivered(make_relay, sink):
    relay = make_relay(routed(sink))
    body = "Subject: grüße\r\nFrom: dörte@b.test\r\n\r\nHallo Jürgen\r\n".encode()
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        assert wire.command(b"MAIL FROM:<a@b.test> SMTPUTF8").code == 250
        reply = wire.command("RCPT TO:<jürgen@dest.test>".encode())
        assert (reply.code, reply.status) == (250, "2.1.5"), reply
        assert wire.command(b"DATA").code == 354
        wire.send(body + b".\r\n")
        reply = wire.reply()
        assert (reply.code, reply.status) == (250, "2.0.0"), reply
        assert wire.command(b"QUIT").code == 221
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == ["jürgen@dest.test"]
    assert message.mail_from == "a@b.test"
    assert "SMTPUTF8" in message.mail_options
    assert message.data.endswith(body)


def test_utf8_recipient_to_a_sink_without_smtputf8_is_not_delivered(make_relay, make_sink):
    """RFC 6531 §3.2: the message needs SMTPUTF8; a server without it must not get it."""
    sink = make_sink(smtputf8=False)
    relay = make_relay(routed(sink))
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        assert wire.command(b"MAIL FROM:<a@b.test> SMTPUTF8").code == 250
        assert wire.command("RCPT TO:<jürgen@dest.test>".encode()).code == 250
        assert wire.command(b"DATA").code == 354
        wire.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        assert wire.reply().code == 250
    log = relay.wait_for_log("to=<jürgen@dest.test>")
    assert "status=bounced" in log.split("to=<jürgen@dest.test>", 1)[1].splitlines()[0]
    assert sink.messages == []
