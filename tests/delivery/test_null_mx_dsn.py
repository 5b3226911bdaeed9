"""What DNS says about the recipient's domain decides where mail goes (RFC 5321 §5.1): a null MX
(RFC 7505) or a domain that does not exist bounces at once with a DSN, without any connection
or retry; a domain with no MX but an address record is delivered to that address (implicit MX)."""

from __future__ import annotations

from tests.delivery.helpers import (
    assert_delivered,
    destination_and_senders_mx,
    holds_for,
    log_lines,
    receive_dsn,
    shared_port,
    submit,
    wait_until,
)


def _bounce_and_dsn(dns_server, make_sink, make_relay, recipient_records, recipient, sender):
    """Submit to `recipient` (whose domain is described by `recipient_records`); return the
    relay, the sink at the recipient domain's address (if it were used) and the DSN."""
    # The recipient domain gets `recipient_records` instead of a plain MX record.
    mx = destination_and_senders_mx(
        dns_server, make_sink, destination_domain=None, sender_domain=sender.rpartition("@")[2]
    )
    if recipient_records:
        dns_server.add(*recipient_records)
    relay = make_relay(mx.relay_config(retry_schedule=["1s"]))
    submit(relay, sender, [recipient], b"Subject: where to?\r\n\r\nhello\r\n")
    _, dsn = receive_dsn(mx.senders_mx, sender)
    return relay, mx.destination, mx.senders_mx, dsn


def test_null_mx_bounces_at_once_with_5_1_10(dns_server, make_sink, make_relay):
    recipient = "ann@nullmx-abc.test"
    relay, wrong_place, senders_mx, dsn = _bounce_and_dsn(
        dns_server,
        make_sink,
        make_relay,
        # The A record must not be used as an implicit MX: the null MX says "no mail here".
        ["nullmx-abc.test. IN MX 0 .", "nullmx-abc.test. IN A 127.0.0.1"],
        recipient,
        "news@sender-nullmx.test",
    )
    fields = dsn.recipient(recipient)
    assert fields["Action"] == "failed"
    assert fields["Status"] == "5.1.10"
    assert "null MX" in fields["Diagnostic-Code"]

    log = relay.wait_for_log("to=<news@sender-nullmx.test>")
    attempts = log_lines(log, f"to=<{recipient}>")
    assert len(attempts) == 1, log
    assert "status=bounced dsn=5.1.10" in attempts[0]
    assert "relay=none" in attempts[0], "no host should have been contacted"
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")
    assert holds_for(
        lambda: not wrong_place.messages and len(log_lines(relay.log, f"to=<{recipient}>")) == 1,
        1.5,
    ), "a null MX domain was tried again or delivered to"
    assert len(senders_mx.messages) == 1


def test_nonexistent_domain_bounces_with_5_1_2(dns_server, make_sink, make_relay):
    recipient = "ann@no-such-domain-abc.test"
    relay, wrong_place, _, dsn = _bounce_and_dsn(
        dns_server, make_sink, make_relay, [], recipient, "news@sender-nxdomain.test"
    )
    fields = dsn.recipient(recipient)
    assert fields["Action"] == "failed"
    assert fields["Status"] == "5.1.2"
    assert "NXDOMAIN" in fields["Diagnostic-Code"]

    log = relay.log
    attempts = log_lines(log, f"to=<{recipient}>")
    assert len(attempts) == 1, log
    assert "status=bounced dsn=5.1.2" in attempts[0]
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")
    assert not wrong_place.messages


def test_domain_without_mx_is_delivered_to_its_address(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.1", "127.0.0.3")
    elsewhere = make_sink(host="127.0.0.1", port=port)
    implicit = make_sink(host="127.0.0.3", port=port)
    dns_server.add("implicit-abc.test. IN A 127.0.0.3")
    relay = make_relay({"delivery": {"port": port}})
    body = b"Subject: implicit MX\r\n\r\nhello\r\n"
    submit(relay, "news@sender.test", ["ann@implicit-abc.test"], body)

    assert_delivered(relay, implicit, "ann@implicit-abc.test", body, via="implicit-abc.test")
    assert not elsewhere.messages
