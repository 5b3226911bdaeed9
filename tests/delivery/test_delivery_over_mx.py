"""A message submitted to relay is delivered to the destination's MX found in DNS."""

from __future__ import annotations

from tests.delivery.helpers import add_mail_domain, submit


def test_delivered_to_the_mx_named_in_dns(dns_server, sink, make_relay):
    add_mail_domain(dns_server, "shop-mx.test", "127.0.0.1")
    relay = make_relay({"delivery": {"port": sink.port}})
    submit(relay, "news@sender.test", ["ann@shop-mx.test"], b"Subject: hi\r\n\r\nhello\r\n")
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == ["ann@shop-mx.test"]
    assert message.mail_from == "news@sender.test"
    assert message.data.endswith(b"Subject: hi\r\n\r\nhello\r\n")
    assert message.data.startswith(b"Received: from ")
    relay.wait_for_log("to=<ann@shop-mx.test> relay=mx.shop-mx.test status=delivered")
