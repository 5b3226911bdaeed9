"""A recipient refused with 5xx is bounced: a DSN (RFC 3464/6522) goes from the null reverse path
to the envelope sender, found through the sender domain's own MX; the other recipients of the
message are delivered and not mentioned. A message with a null sender bounces silently."""

from __future__ import annotations

from tests.delivery.helpers import (
    NULL_REVERSE_PATH,
    holds_for,
    log_lines,
    parse_dsn,
    shared_port,
    wait_until,
)


def test_rcpt_550_bounces_with_a_dsn_to_the_sender(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.1", "127.0.0.2")
    destination = make_sink(host="127.0.0.1", port=port)
    senders_mx = make_sink(host="127.0.0.2", port=port)
    dns_server.add(
        "dest-xyz.test. IN MX 10 mx.dest-xyz.test.",
        "mx.dest-xyz.test. IN A 127.0.0.1",
        "sender-xyz.test. IN MX 10 mx.sender-xyz.test.",
        "mx.sender-xyz.test. IN A 127.0.0.2",
    )
    destination.rcpt_replies["gone@dest-xyz.test"].append("550 5.1.1 no such user")
    relay = make_relay({"delivery": {"port": port}})
    original = (
        b"From: News <news@sender-xyz.test>\r\n"
        b"To: <gone@dest-xyz.test>\r\n"
        b"Subject: Spring catalogue 4711\r\n"
        b"Message-ID: <catalogue-4711@sender-xyz.test>\r\n"
        b"\r\n"
        b"Our spring catalogue is out.\r\n"
    )
    with relay.smtp() as client:
        client.sendmail(
            "news@sender-xyz.test", ["gone@dest-xyz.test", "here@dest-xyz.test"], original
        )

    (delivered,) = destination.wait_for(1)
    assert delivered.rcpt_tos == ["here@dest-xyz.test"]
    assert delivered.data.endswith(original)

    (notice,) = senders_mx.wait_for(1)
    assert notice.mail_from in NULL_REVERSE_PATH, "a DSN comes from <> (RFC 5321 §4.5.5)"
    assert notice.rcpt_tos == ["news@sender-xyz.test"]
    dsn = parse_dsn(notice.data)
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
    assert holds_for(lambda: len(senders_mx.messages) == 1, 1.5), "more than one DSN"
    assert len(destination.messages) == 1


def test_null_sender_bounce_produces_no_dsn(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.1", "127.0.0.2")
    destination = make_sink(host="127.0.0.1", port=port)
    senders_mx = make_sink(host="127.0.0.2", port=port)
    dns_server.add(
        "dest-null.test. IN MX 10 mx.dest-null.test.",
        "mx.dest-null.test. IN A 127.0.0.1",
        "sender-null.test. IN MX 10 mx.sender-null.test.",
        "mx.sender-null.test. IN A 127.0.0.2",
    )
    destination.rcpt_replies["gone@dest-null.test"].append("550 5.1.1 no such user")
    relay = make_relay({"delivery": {"port": port}})
    with relay.smtp() as client:
        client.sendmail(
            "",
            ["gone@dest-null.test"],
            b"From: <mailer-daemon@sender-null.test>\r\nSubject: a bounce\r\n\r\nbounced\r\n",
        )

    log = relay.wait_for_log("no DSN: the message had a null sender")
    assert log_lines(log, "to=<gone@dest-null.test>", "status=bounced dsn=5.1.1")
    assert not log_lines(log, "sender non-delivery notification"), log
    wait_until(lambda: not relay.queue_files(), 10, "the bounced message leaves the queue")
    assert holds_for(lambda: not senders_mx.messages and not destination.messages, 1.0)
