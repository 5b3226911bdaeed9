"""CVE-2024-34083 / "NO STARTTLS": plaintext pipelined behind STARTTLS must be discarded, not
executed once TLS is up (RFC 3207 §4.2, COMPLIANCE §13)."""

from __future__ import annotations

from tests.ingest.wire import Wire


def test_command_pipelined_after_starttls_is_not_answered_inside_tls(make_relay):
    relay = make_relay()
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        wire.send(b"STARTTLS\r\nRSET\r\n")
        reply = wire.reply()
        assert reply.code == 220, reply
        wire.starttls()
        wire.send(b"EHLO x\r\n")
        first = wire.line()
        assert first.startswith(b"250-"), f"first reply inside TLS: {first!r}"
        ehlo = [first]
        while ehlo[-1][3:4] == b"-":
            ehlo.append(wire.line())
        assert b"250-STARTTLS" not in ehlo, ehlo
        assert any(line.startswith(b"250-AUTH") for line in ehlo), ehlo
        # Nothing else is waiting: the next reply is NOOP's own.
        assert wire.command("NOOP").lines == [b"250 2.0.0 OK"]


def test_injected_transaction_after_starttls_is_not_executed(make_relay, sink):
    """The classic injection: a whole MAIL/RCPT pipelined in plaintext behind STARTTLS."""
    relay = make_relay({"delivery": {"routes": {"dest.test": f"[127.0.0.1]:{sink.port}"}}})
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        wire.send(b"STARTTLS\r\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@dest.test>\r\n")
        assert wire.reply().code == 220
        wire.starttls()
        # The session starts over inside TLS: no EHLO yet, no sender.
        reply = wire.command("EHLO x")
        assert reply.lines[0].startswith(b"250-"), reply
        reply = wire.command("RCPT TO:<ann@dest.test>")
        assert (reply.code, reply.status) == (503, "5.5.1"), reply
        reply = wire.command("DATA")
        assert (reply.code, reply.status) == (503, "5.5.1"), reply
        assert wire.command("QUIT").code == 221
    assert relay.queue_files() == []
    assert "evil@x.test" not in relay.log
