"""A recipient refused with 5xx is bounced: a DSN (RFC 3464/6522) goes from the null reverse path
to the envelope sender, found through the sender domain's own MX; the other recipients of the
message are delivered and not mentioned. A message with a null sender bounces silently."""

from __future__ import annotations

from tests.delivery.helpers import (
    destination_and_senders_mx,
    holds_for,
    log_lines,
    receive_dsn,
    submit,
    wait_until,
)


def test_rcpt_550_bounces_with_a_dsn_to_the_sender(dns_server, make_sink, make_relay):
    mx = destination_and_senders_mx(dns_server, make_sink, "dest-xyz.test", "sender-xyz.test")
    mx.destination.rcpt_replies["gone@dest-xyz.test"].append("550 5.1.1 no such user")
    relay = make_relay(mx.relay_config())
    original = (
        b"From: News <news@sender-xyz.test>\r\n"
        b"To: <gone@dest-xyz.test>\r\n"
        b"Subject: Spring catalogue 4711\r\n"
        b"Message-ID: <catalogue-4711@sender-xyz.test>\r\n"
        b"\r\n"
        b"Our spring catalogue is out.\r\n"
    )
    submit(relay, "news@sender-xyz.test", ["gone@dest-xyz.test", "here@dest-xyz.test"], original)

    (delivered,) = mx.destination.wait_for(1)
    assert delivered.rcpt_tos == ["here@dest-xyz.test"]
    assert delivered.data.endswith(original)

    notice, dsn = receive_dsn(mx.senders_mx, "news@sender-xyz.test")
    assert dsn.message["Auto-Submitted"] == "auto-generated"
    assert "news@sender-xyz.test" in dsn.message["To"]
    assert dsn.per_message["Reporting-MTA"] == "dns; relay.test"
    assert [str(block["Final-Recipient"]) for block in dsn.per_recipient] == [
        "rfc822; gone@dest-xyz.test"
    ]
    fields = dsn.recipient("gone@dest-xyz.test")
    assert fields["Action"] == "failed"
    assert fields["Status"] == "5.1.1"
    assert fields["Diagnostic-Code"] == "smtp; 550 5.1.1 no such user"
    assert fields["Remote-MTA"] == "dns; mx.dest-xyz.test"
    assert "Subject: Spring catalogue 4711" in dsn.original_headers
    assert "Message-ID: <catalogue-4711@sender-xyz.test>" in dsn.original_headers
    assert "Our spring catalogue is out." not in notice.data.decode()
    assert "gone@dest-xyz.test" in dsn.notification
    assert "here@dest-xyz.test" not in dsn.notification

    log = relay.wait_for_log("to=<news@sender-xyz.test> relay=mx.sender-xyz.test status=delivered")
    assert log_lines(log, "to=<gone@dest-xyz.test>", "status=bounced dsn=5.1.1")
    assert len(log_lines(log, "to=<here@dest-xyz.test>", "status=delivered")) == 1, log
    assert len(log_lines(log, "sender non-delivery notification")) == 1, log
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")
    assert holds_for(lambda: len(mx.senders_mx.messages) == 1, 1.5), "more than one DSN"
    assert len(mx.destination.messages) == 1


def test_null_sender_bounce_produces_no_dsn(dns_server, make_sink, make_relay):
    mx = destination_and_senders_mx(dns_server, make_sink, "dest-null.test", "sender-null.test")
    mx.destination.rcpt_replies["gone@dest-null.test"].append("550 5.1.1 no such user")
    relay = make_relay(mx.relay_config())
    submit(
        relay,
        "",
        ["gone@dest-null.test"],
        b"From: <mailer-daemon@sender-null.test>\r\nSubject: a bounce\r\n\r\nbounced\r\n",
    )

    log = relay.wait_for_log("no DSN: the message had a null sender")
    assert log_lines(log, "to=<gone@dest-null.test>", "status=bounced dsn=5.1.1")
    assert not log_lines(log, "sender non-delivery notification"), log
    wait_until(lambda: not relay.queue_files(), 10, "the bounced message leaves the queue")
    assert holds_for(lambda: not mx.senders_mx.messages and not mx.destination.messages, 1.0)
