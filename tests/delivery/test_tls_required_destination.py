"""`[delivery] tls = { "<domain>" = "required" }`: no delivery to that destination without
STARTTLS and a certificate valid for the MX name under `[delivery] ca_file`; a destination that
does not offer it gets nothing, not even in plaintext, and the recipient expires with a 5.7.10
DSN. The same MX with a certificate from the trusted CA gets the message over TLS."""

from __future__ import annotations

from tests.delivery.helpers import (
    DESTINATION_HOST,
    SENDERS_MX_HOST,
    add_mail_domain,
    receive_dsn,
    shared_port,
    submit,
)
from tests.support.tls_ca import TestCa

LIFETIME = 4  # seconds; retried every second


def test_required_tls_is_used_with_a_trusted_certificate(
    dns_server, make_sink, make_relay, tmp_path
):
    domain = "tls-required-ok.test"
    ca = TestCa(tmp_path / "ca")
    sink = make_sink(tls_context=ca.server_context(f"mx.{domain}"))
    add_mail_domain(dns_server, domain, DESTINATION_HOST)
    relay = make_relay(
        {"delivery": {"port": sink.port, "ca_file": str(ca.ca_file), "tls": {domain: "required"}}}
    )

    submit(relay, "a@sender.test", [f"b@{domain}"], b"Subject: s\r\n\r\nbody\r\n")

    (message,) = sink.wait_for(1)
    assert message.tls


def test_required_tls_never_downgrades_and_expires_with_5_7_10(
    dns_server, make_sink, make_relay, tmp_path
):
    domain = "tls-required-plain.test"
    sender = f"news@sender-{domain}"
    ca = TestCa(tmp_path / "ca")
    port = shared_port(DESTINATION_HOST, SENDERS_MX_HOST)
    destination = make_sink(host=DESTINATION_HOST, port=port)  # no STARTTLS
    senders_mx = make_sink(host=SENDERS_MX_HOST, port=port)
    add_mail_domain(dns_server, domain, DESTINATION_HOST)
    add_mail_domain(dns_server, f"sender-{domain}", SENDERS_MX_HOST)
    relay = make_relay(
        {
            "delivery": {
                "port": port,
                "ca_file": str(ca.ca_file),
                "tls": {domain.upper(): "required"},
                "retry_schedule": ["1s"],
                "max_lifetime": f"{LIFETIME}s",
            }
        }
    )

    submit(relay, sender, [f"b@{domain}"], b"Subject: secret\r\n\r\nbody\r\n")

    _, dsn = receive_dsn(senders_mx, sender, timeout=LIFETIME + 15)
    fields = dsn.recipient(f"b@{domain}")
    assert fields["Status"] == "5.7.10"
    assert "does not offer STARTTLS" in fields["Diagnostic-Code"]
    assert f"[delivery] tls of {domain}" in fields["Diagnostic-Code"]
    assert not destination.messages, "a required-TLS destination received plaintext"
    relay.wait_for_log(f"to=<b@{domain}> relay=mx.{domain} status=expired dsn=4.7.10")
    # The sender's MX has no TLS setting: its DSN went in plaintext, as before.
    assert not senders_mx.messages[0].tls
