"""SMTP smuggling (COMPLIANCE §13): only <CRLF>.<CRLF> ends DATA, bare CR, bare LF and NUL refuse
the message, pipelined transactions stay separate, and what relay emits is dot-stuffed CRLF.

The payloads follow the shape of aiosmtpd's test_smtpsmuggling: a fake end-of-data sequence, then
a second transaction, then the real end of data.
"""

from __future__ import annotations

import re

import pytest

from tests.ingest.wire import Wire

SMUGGLED = (
    b"MAIL FROM:<evil@x.test>\r\n"
    b"RCPT TO:<victim@dest.test>\r\n"
    b"DATA\r\n"
    b"Subject: smuggled\r\n"
    b"\r\n"
    b"NO SMUGGLING\r\n"
    b".\r\n"
)
CONTROL = b"Subject: control\r\n\r\nthe honest message after the refused one\r\n"

BARE_LINE_ENDINGS = {
    "lflf": b"\n.\n",
    "lfcrlf": b"\n.\r\n",
    "crlflf": b"\r\n.\n",
    "crcr": b"\r.\r",
    "crlf": b"\r.\n",
    "lfcr": b"\n.\r",
    "crcrlf": b"\r.\r\n",
    "crlfcr": b"\r\n.\r",
    "lflfdot": b"\n\n.\r\n",
}
NUL = {
    "nullbefore": b"\r\n\x00.\r\n",
    "nullafter": b"\r\n.\x00\r\n",
}
CASES = [
    *((name, seq, "5.5.2") for name, seq in BARE_LINE_ENDINGS.items()),
    *((name, seq, "5.6.0") for name, seq in NUL.items()),
]


def routed(sink) -> dict:
    return {"delivery": {"routes": {"dest.test": f"[127.0.0.1]:{sink.port}"}}}


def open_data(wire: Wire, sender: str = "honest@sender.test", rcpt: str = "ann@dest.test") -> None:
    for command, code in ((f"MAIL FROM:<{sender}>", 250), (f"RCPT TO:<{rcpt}>", 250)):
        reply = wire.command(command)
        assert reply.code == code, (command, reply)
    reply = wire.command("DATA")
    assert reply.code == 354, reply


def assert_nothing_more(wire: Wire) -> None:
    """The next reply is NOOP's own: no reply to a smuggled command is waiting before it."""
    reply = wire.command("NOOP")
    assert reply.lines == [b"250 2.0.0 OK"], reply


@pytest.mark.parametrize(
    ("sequence", "status"),
    [pytest.param(seq, status, id=name) for name, seq, status in CASES],
)
def test_fake_end_of_data_refuses_the_message(make_relay, sink, sequence, status):
    relay = make_relay(routed(sink))
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        open_data(wire)
        wire.send(b"Subject: x\r\n\r\nfirst" + sequence + SMUGGLED)
        reply = wire.reply()
        assert (reply.code, reply.status) == (554, status), reply
        assert_nothing_more(wire)
        assert relay.queue_files() == []
        # The refusal ends the transaction; an honest message on the same connection goes
        # through, and is the only thing the sink ever receives.
        open_data(wire, rcpt="control@dest.test")
        wire.send(CONTROL + b".\r\n")
        reply = wire.reply()
        assert reply.code == 250, reply
        assert wire.command("QUIT").code == 221
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == ["control@dest.test"]
    assert message.mail_from == "honest@sender.test"
    assert message.data.endswith(CONTROL)
    assert b"smuggled" not in message.data
    assert b"NO SMUGGLING" not in message.data
    assert relay.log.count(": accepted from=") == 1, relay.log
    assert "refused DATA" in relay.log


def test_dot_without_crlf_is_a_stuffed_line_of_one_message(make_relay, sink):
    """`\\r\\n.MAIL FROM:...` is the line `.MAIL FROM:...`, dot-unstuffed: one message."""
    relay = make_relay(routed(sink))
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        open_data(wire)
        wire.send(b"Subject: x\r\n\r\nfirst\r\n." + SMUGGLED)
        reply = wire.reply()
        assert (reply.code, reply.status) == (250, "2.0.0"), reply
        assert_nothing_more(wire)
        assert wire.command("QUIT").code == 221
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == ["ann@dest.test"]
    # The smuggled commands are lines of the message; only their final ".\r\n" ended DATA.
    assert message.data.endswith(b"Subject: x\r\n\r\nfirst\r\n" + SMUGGLED.removesuffix(b".\r\n"))
    relay.wait_for_log("to=<ann@dest.test> relay=")
    assert len(sink.messages) == 1
    assert all("victim@dest.test" not in m.rcpt_tos for m in sink.messages)


def test_two_pipelined_transactions_in_one_write(make_relay, sink):
    relay = make_relay(routed(sink))
    first = b"Subject: one\r\n\r\nfirst body\r\n..leading dot\r\n"
    second = b"Subject: two\r\n\r\nsecond body\r\n"
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        wire.send(
            b"MAIL FROM:<one@sender.test>\r\nRCPT TO:<ann@dest.test>\r\nDATA\r\n"
            + first
            + b".\r\n"
            + b"MAIL FROM:<two@sender.test>\r\nRCPT TO:<bob@dest.test>\r\nDATA\r\n"
            + second
            + b".\r\nQUIT\r\n"
        )
        replies = [wire.reply() for _ in range(9)]
    codes = [reply.code for reply in replies]
    assert codes == [250, 250, 354, 250, 250, 250, 354, 250, 221], replies
    assert replies[3].status == replies[7].status == "2.0.0", replies
    messages = sink.wait_for(2)
    relay.wait_for_log("to=<ann@dest.test> relay=")
    relay.wait_for_log("to=<bob@dest.test> relay=")
    assert len(sink.messages) == 2
    by_sender = {m.mail_from: m for m in messages}
    assert by_sender["one@sender.test"].rcpt_tos == ["ann@dest.test"]
    assert by_sender["two@sender.test"].rcpt_tos == ["bob@dest.test"]
    # The first body's "..leading dot" line was unstuffed once at ingest and stuffed again
    # on the way out, so the sink (which unstuffs) sees ".leading dot".
    assert by_sender["one@sender.test"].data.endswith(
        b"Subject: one\r\n\r\nfirst body\r\n.leading dot\r\n"
    )
    assert by_sender["two@sender.test"].data.endswith(second)


def test_dots_and_line_endings_reach_the_next_hop_intact(make_relay, sink):
    """Outbound: relay dot-stuffs what it emits and sends CRLF only (COMPLIANCE §13)."""
    relay = make_relay(routed(sink))
    body = (
        b"Subject: dots\r\n"
        b"\r\n"
        b".starts with a dot\r\n"
        b"..starts with two dots\r\n"
        b".\r\n"
        b"the line above is a lone dot\r\n"
        b"..\r\n"
        b". \r\n"
        b"last line\r\n"
    )
    with relay.smtp() as client:
        refused = client.sendmail("a@sender.test", ["ann@dest.test"], body)
        assert refused == {}
    (message,) = sink.wait_for(1)
    assert message.data.endswith(b"\r\n" + body)
    received, _, rest = message.data.partition(b"Subject: dots\r\n")
    assert rest == body[len(b"Subject: dots\r\n") :]
    assert received.startswith(b"Received: ")
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", message.data) is None, message.data
