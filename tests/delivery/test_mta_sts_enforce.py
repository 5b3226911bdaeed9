"""MTA-STS (RFC 8461) against real parts: the policy is announced in the test DNS (NSD), served
over HTTPS on loopback with a certificate from a CA the test made (`[delivery] ca_file`), and the
MX is an aiosmtpd sink. `enforce` delivers only over STARTTLS with a certificate valid for the
MX name; otherwise the recipient waits, is never sent in plaintext, and expires with a 5.7.10
DSN. A domain without a policy still gets opportunistic STARTTLS."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.delivery.helpers import (
    DESTINATION_HOST,
    SENDERS_MX_HOST,
    add_mail_domain,
    holds_for,
    receive_dsn,
    shared_port,
    submit,
    wait_until,
)
from tests.support.dns_server import DnsServer, txt
from tests.support.mta_sts_server import POLICY_PATH, MtaStsServer
from tests.support.sink import Sink
from tests.support.tls_ca import TestCa

LIFETIME = 4  # seconds; retried every second


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture
def policy_server(test_ca: TestCa) -> Iterator[Callable[[str, str], MtaStsServer]]:
    servers: list[MtaStsServer] = []

    def start(domain: str, mode: str) -> MtaStsServer:
        policy = f"version: STSv1\r\nmode: {mode}\r\nmx: mx.{domain}\r\nmax_age: 86400\r\n"
        server = MtaStsServer(test_ca.server_context(f"mta-sts.{domain}"), policy).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def _publish_policy(dns_server: DnsServer, domain: str) -> None:
    dns_server.add(
        txt(f"_mta-sts.{domain}", "v=STSv1; id=20261123T0300"),
        f"mta-sts.{domain}. IN A 127.0.0.1",
    )


def _config(port: int, test_ca: TestCa, mta_sts_port: int, **delivery: object) -> dict:
    return {
        "delivery": {
            "port": port,
            "ca_file": str(test_ca.ca_file),
            "mta_sts_port": mta_sts_port,
            **delivery,
        }
    }


def test_enforce_with_a_valid_certificate_delivers_over_tls(
    dns_server, make_sink, make_relay, test_ca, policy_server
):
    domain = "sts-valid.test"
    sink = make_sink(tls_context=test_ca.server_context(f"mx.{domain}"), require_starttls=True)
    add_mail_domain(dns_server, domain, DESTINATION_HOST)
    _publish_policy(dns_server, domain)
    server = policy_server(domain, "enforce")
    relay = make_relay(_config(sink.port, test_ca, server.port))

    submit(relay, "a@sender.test", [f"b@{domain}"], b"Subject: s\r\n\r\nbody\r\n")

    (message,) = sink.wait_for(1)
    assert message.tls
    assert server.requests == [(f"mta-sts.{domain}", POLICY_PATH)]
    log = relay.wait_for_log(f"to=<b@{domain}> relay=mx.{domain} status=delivered")
    assert f"MTA-STS {domain}: policy id 20261123T0300, mode enforce" in log


@pytest.mark.parametrize("mx_tls", ["untrusted certificate", "no STARTTLS"])
def test_enforce_never_falls_back_to_plaintext_and_expires_with_5_7_10(
    dns_server, make_sink, make_relay, test_ca, policy_server, sink_tls_context, mx_tls
):
    domain = "sts-untrusted.test" if mx_tls == "untrusted certificate" else "sts-plain.test"
    sender = f"news@sender-{domain}"
    port = shared_port(DESTINATION_HOST, SENDERS_MX_HOST)
    context = sink_tls_context if mx_tls == "untrusted certificate" else None
    destination = make_sink(host=DESTINATION_HOST, port=port, tls_context=context)
    senders_mx = make_sink(host=SENDERS_MX_HOST, port=port)
    add_mail_domain(dns_server, domain, DESTINATION_HOST)
    add_mail_domain(dns_server, f"sender-{domain}", SENDERS_MX_HOST)
    _publish_policy(dns_server, domain)
    server = policy_server(domain, "enforce")
    relay = make_relay(
        _config(port, test_ca, server.port, retry_schedule=["1s"], max_lifetime=f"{LIFETIME}s")
    )

    submit(relay, sender, [f"b@{domain}"], b"Subject: secret\r\n\r\nbody\r\n")

    _, dsn = receive_dsn(senders_mx, sender, timeout=LIFETIME + 15)
    fields = dsn.recipient(f"b@{domain}")
    assert fields["Action"] == "failed"
    assert fields["Status"] == "5.7.10"
    assert f"the MTA-STS policy of {domain}" in fields["Diagnostic-Code"]
    assert not destination.messages, "delivered although the MTA-STS policy was not met"
    log = relay.wait_for_log(f"to=<b@{domain}> relay=mx.{domain} status=expired dsn=4.7.10")
    assert "status=queued dsn=4.7.10" in log, "the TLS failure was not retried"
    assert len(server.requests) == 1, "the policy is cached"
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")


def test_enforce_skips_mx_hosts_the_policy_does_not_name(
    dns_server, make_sink, make_relay, test_ca, policy_server
):
    domain = "sts-other-mx.test"
    sink = make_sink(tls_context=test_ca.server_context(f"rogue.{domain}"))
    dns_server.add(f"{domain}. IN MX 10 rogue.{domain}.", f"rogue.{domain}. IN A 127.0.0.1")
    _publish_policy(dns_server, domain)
    server = policy_server(domain, "enforce")
    relay = make_relay(_config(sink.port, test_ca, server.port))

    submit(relay, "a@sender.test", [f"b@{domain}"], b"Subject: s\r\n\r\nbody\r\n")

    relay.wait_for_log(f"no MX host of {domain} is named by its MTA-STS policy")
    assert holds_for(lambda: not sink.messages, 1.5)


def test_testing_mode_only_logs(dns_server, make_sink, make_relay, test_ca, policy_server):
    domain = "sts-testing.test"
    sink = make_sink(tls_context=test_ca.server_context(f"rogue.{domain}"))
    dns_server.add(f"{domain}. IN MX 10 rogue.{domain}.", f"rogue.{domain}. IN A 127.0.0.1")
    _publish_policy(dns_server, domain)
    server = policy_server(domain, "testing")
    relay = make_relay(_config(sink.port, test_ca, server.port))

    submit(relay, "a@sender.test", [f"b@{domain}"], b"Subject: s\r\n\r\nbody\r\n")

    (message,) = sink.wait_for(1)
    assert message.tls
    assert f"MX rogue.{domain} is not named by the policy" in relay.log


def test_without_a_policy_starttls_stays_opportunistic(
    dns_server, make_sink, make_relay, test_ca, sink_tls_context
):
    domain = "sts-none.test"
    sink = make_sink(tls_context=sink_tls_context)  # self-signed: not from the test CA
    add_mail_domain(dns_server, domain, DESTINATION_HOST)
    relay = make_relay(_config(sink.port, test_ca, 1))

    submit(relay, "a@sender.test", [f"b@{domain}"], b"Subject: s\r\n\r\nbody\r\n")

    (message,) = sink.wait_for(1)
    assert message.tls


def test_without_starttls_and_without_a_policy_plaintext_is_fine(
    dns_server, make_sink: Callable[..., Sink], make_relay, test_ca
):
    domain = "sts-none-plain.test"
    sink = make_sink()
    add_mail_domain(dns_server, domain, DESTINATION_HOST)
    relay = make_relay(_config(sink.port, test_ca, 1))

    submit(relay, "a@sender.test", [f"b@{domain}"], b"Subject: s\r\n\r\nbody\r\n")

    (message,) = sink.wait_for(1)
    assert not message.tls
