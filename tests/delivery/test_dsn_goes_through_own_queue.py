"""A DSN is queued and delivered like any other message, from the null reverse path; when the DSN
itself bounces, relay records it and stops there: no DSN about a DSN (RFC 3464 §2, RFC 5321
§4.5.5), so two failing domains cannot bounce mail back and forth."""

from __future__ import annotations

from tests.delivery.helpers import (
    destination_and_senders_mx,
    holds_for,
    log_lines,
    submit,
    wait_until,
)


def test_a_bouncing_dsn_causes_no_further_dsn(dns_server, make_sink, make_relay):
    mx = destination_and_senders_mx(dns_server, make_sink, "dest-loop.test", "sender-loop.test")
    sender, recipient = "news@sender-loop.test", "gone@dest-loop.test"
    mx.destination.rcpt_replies[recipient].append("550 5.1.1 no such user")
    mx.senders_mx.rcpt_replies[sender].append("550 5.1.1 sender mailbox gone too")
    relay = make_relay(mx.relay_config())
    submit(relay, sender, [recipient], b"Subject: ping pong\r\n\r\nhello\r\n")

    log = relay.wait_for_log("no DSN: the message had a null sender")
    (notified,) = log_lines(log, "sender non-delivery notification")
    dsn_queue_id = notified.rsplit(" ", 1)[1]
    assert log_lines(log, f"to=<{recipient}>", "status=bounced dsn=5.1.1")
    assert log_lines(log, dsn_queue_id, f"to=<{sender}>", "status=bounced dsn=5.1.1"), log
    assert log_lines(log, f"{dsn_queue_id}: no DSN: the message had a null sender"), log

    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")
    assert not mx.senders_mx.rcpt_replies[sender], "the DSN was never offered to the sender's MX"
    assert holds_for(
        lambda: len(log_lines(relay.log, "sender non-delivery notification")) == 1, 2.0
    ), "a DSN about a DSN was queued"
    assert not mx.destination.messages
    assert not mx.senders_mx.messages
