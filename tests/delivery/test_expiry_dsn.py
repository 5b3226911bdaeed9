"""A recipient that keeps failing temporarily is retried until [delivery] max_lifetime, then ends
`expired` with a DSN (Status 4.4.7, RFC 3463) to the sender, and relay stops trying."""

from __future__ import annotations

from tests.delivery.helpers import (
    NULL_REVERSE_PATH,
    holds_for,
    log_lines,
    parse_dsn,
    shared_port,
    wait_until,
)

LIFETIME = 4  # seconds; retried every second


def _check_expiry_dsn(senders_mx, sender: str, recipient: str, diagnostic: str) -> None:
    (notice,) = senders_mx.wait_for(1, timeout=LIFETIME + 15)
    assert notice.mail_from in NULL_REVERSE_PATH
    assert notice.rcpt_tos == [sender]
    dsn = parse_dsn(notice.data)
    fields = dsn.recipient(recipient)
    assert fields["Action"] == "failed"
    assert fields["Status"] == "4.4.7"
    assert diagnostic in fields["Diagnostic-Code"]


def test_451_until_the_lifetime_ends_expires_with_a_dsn(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.1", "127.0.0.2")
    destination = make_sink(host="127.0.0.1", port=port)
    senders_mx = make_sink(host="127.0.0.2", port=port)
    scripted = 100
    destination.data_replies.extend(["451 4.3.0 try later"] * scripted)
    dns_server.add(
        "expire-data.test. IN MX 10 mx.expire-data.test.",
        "mx.expire-data.test. IN A 127.0.0.1",
        "sender-expire-data.test. IN MX 10 mx.sender-expire-data.test.",
        "mx.sender-expire-data.test. IN A 127.0.0.2",
    )
    relay = make_relay(
        {"delivery": {"port": port, "retry_schedule": ["1s"], "max_lifetime": f"{LIFETIME}s"}}
    )
    sender, recipient = "news@sender-expire-data.test", "ann@expire-data.test"
    with relay.smtp() as client:
        client.sendmail(sender, [recipient], b"Subject: never\r\n\r\nhello\r\n")

    _check_expiry_dsn(senders_mx, sender, recipient, "451 4.3.0 try later")
    log = relay.wait_for_log(f"to=<{recipient}> relay=mx.expire-data.test status=expired")
    assert len(log_lines(log, f"to=<{recipient}>", "status=expired dsn=4.3.0")) == 1, log
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")

    def attempts() -> int:
        return scripted - len(destination.data_replies)

    seen = attempts()
    # Once a second for four seconds, plus the one at the deadline: never dozens.
    assert 2 <= seen <= LIFETIME + 3, f"{seen} attempts within a {LIFETIME}s lifetime"
    assert holds_for(lambda: attempts() == seen, 2.0), "relay kept trying after expiry"
    assert not destination.messages
    assert len(senders_mx.messages) == 1


def test_no_listener_until_the_lifetime_ends_expires_with_a_dsn(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.1", "127.0.0.2")
    senders_mx = make_sink(host="127.0.0.2", port=port)  # nothing listens on 127.0.0.1
    dns_server.add(
        "expire-down.test. IN MX 10 mx.expire-down.test.",
        "mx.expire-down.test. IN A 127.0.0.1",
        "sender-expire-down.test. IN MX 10 mx.sender-expire-down.test.",
        "mx.sender-expire-down.test. IN A 127.0.0.2",
    )
    relay = make_relay(
        {"delivery": {"port": port, "retry_schedule": ["1s"], "max_lifetime": f"{LIFETIME}s"}}
    )
    sender, recipient = "news@sender-expire-down.test", "ann@expire-down.test"
    with relay.smtp() as client:
        client.sendmail(sender, [recipient], b"Subject: never\r\n\r\nhello\r\n")

    _check_expiry_dsn(senders_mx, sender, recipient, "connect to mx.expire-down.test")
    log = relay.wait_for_log(f"to=<{recipient}> relay=mx.expire-down.test status=expired")
    assert len(log_lines(log, f"to=<{recipient}>", "status=expired dsn=4.4.1")) == 1, log
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")

    def attempts() -> int:
        return len(log_lines(relay.log, f"to=<{recipient}>", "status="))

    seen = attempts()
    assert 2 <= seen <= LIFETIME + 3, f"{seen} attempts within a {LIFETIME}s lifetime"
    assert holds_for(lambda: attempts() == seen, 2.0), "relay kept trying after expiry"
    assert len(senders_mx.messages) == 1
