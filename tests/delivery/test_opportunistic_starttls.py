"""Outbound opportunistic STARTTLS (RFC 3207): relay encrypts whenever the destination offers
STARTTLS, even with a self-signed certificate, and still delivers to one that does not."""

from __future__ import annotations


def test_starttls_is_used_when_offered(make_sink, make_relay, sink_tls_context):
    sink = make_sink(tls_context=sink_tls_context)
    relay = make_relay({"delivery": {"routes": {"tls.test": f"[127.0.0.1]:{sink.port}"}}})
    with relay.smtp() as client:
        client.sendmail("a@sender.test", ["b@tls.test"], b"Subject: secret\r\n\r\nbody\r\n")
    (message,) = sink.wait_for(1)
    assert message.tls, "relay delivered in plaintext although STARTTLS was offered"
    assert message.data.endswith(b"Subject: secret\r\n\r\nbody\r\n")


def test_plaintext_when_starttls_is_not_offered(make_sink, make_relay):
    sink = make_sink()
    relay = make_relay({"delivery": {"routes": {"plain.test": f"[127.0.0.1]:{sink.port}"}}})
    with relay.smtp() as client:
        client.sendmail("a@sender.test", ["b@plain.test"], b"Subject: open\r\n\r\nbody\r\n")
    (message,) = sink.wait_for(1)
    assert not message.tls
