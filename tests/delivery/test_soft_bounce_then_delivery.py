"""A destination that answers 4xx is retried on [delivery] retry_schedule; the retry delivers the
message once, and the queue file goes away when every recipient is final (DESIGN §3)."""

from __future__ import annotations

from tests.delivery.helpers import (
    add_mail_domain,
    assert_delivered,
    holds_for,
    log_lines,
    submit,
    wait_until,
)


def test_451_at_data_is_retried_and_delivered_once(dns_server, sink, make_relay):
    add_mail_domain(dns_server, "soft-data.test", "127.0.0.1")
    sink.data_replies.append("451 4.3.0 try later")
    relay = make_relay({"delivery": {"port": sink.port, "retry_schedule": ["1s"]}})
    body = b"Subject: soft bounce\r\nMessage-ID: <soft-1@sender.test>\r\n\r\nsecond time lucky\r\n"
    submit(relay, "news@sender.test", ["ann@soft-data.test"], body)

    log = assert_delivered(relay, sink, "ann@soft-data.test", body, via="mx.soft-data.test")
    assert not sink.data_replies, "the scripted 451 was never used: no first attempt"
    deferred = log_lines(
        log, "to=<ann@soft-data.test>", "status=queued", "(451 4.3.0 try later)", "retry in"
    )
    delivered = log_lines(log, "to=<ann@soft-data.test>", "status=delivered")
    assert len(deferred) == 1, log
    assert len(delivered) == 1, log
    assert log.index(deferred[0]) < log.index(delivered[0])
    assert holds_for(lambda: len(sink.messages) == 1, 1.5), "delivered more than once"


def test_450_at_rcpt_defers_only_that_recipient(dns_server, sink, make_relay):
    add_mail_domain(dns_server, "soft-rcpt.test", "127.0.0.1")
    sink.rcpt_replies["busy@soft-rcpt.test"].append("450 4.2.1 mailbox busy")
    relay = make_relay({"delivery": {"port": sink.port, "retry_schedule": ["1s"]}})
    body = b"Subject: two recipients\r\n\r\none is busy\r\n"
    submit(relay, "news@sender.test", ["busy@soft-rcpt.test", "free@soft-rcpt.test"], body)

    first, second = sink.wait_for(2)
    assert first.rcpt_tos == ["free@soft-rcpt.test"], "the free recipient waits for the busy one"
    assert second.rcpt_tos == ["busy@soft-rcpt.test"]
    assert first.data.endswith(body)
    assert second.data.endswith(body)

    log = relay.wait_for_log("to=<busy@soft-rcpt.test> relay=mx.soft-rcpt.test status=delivered")
    assert log_lines(log, "to=<busy@soft-rcpt.test>", "status=queued", "450 4.2.1 mailbox busy")
    assert len(log_lines(log, "to=<free@soft-rcpt.test>", "status=")) == 1, log
    assert len(log_lines(log, "to=<busy@soft-rcpt.test>", "status=delivered")) == 1, log

    wait_until(lambda: not relay.queue_files(), 10, "queue file removed after delivery")
    assert holds_for(lambda: len(sink.messages) == 2, 1.5), "a recipient got the message twice"
    delivered = [rcpt for message in sink.messages for rcpt in message.rcpt_tos]
    assert sorted(delivered) == ["busy@soft-rcpt.test", "free@soft-rcpt.test"]
