"""MX hosts are tried in order of preference (RFC 5321 §5.1): the most preferred one gets the
mail, the next one when the first does not answer. A transport-map route in brackets names the
host itself and skips DNS for the domain; without brackets relay looks up the MX of the route's
host name."""

from __future__ import annotations

from tests.delivery.helpers import assert_delivered, shared_port, submit, wait_until
from tests.support.network import free_port


def _two_mx(dns_server, domain: str) -> None:
    dns_server.add(
        f"{domain}. IN MX 10 mx1.{domain}.",
        f"{domain}. IN MX 20 mx2.{domain}.",
        f"mx1.{domain}. IN A 127.0.0.2",
        f"mx2.{domain}. IN A 127.0.0.3",
    )


def test_the_preferred_mx_gets_the_mail(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.2", "127.0.0.3")
    preferred = make_sink(host="127.0.0.2", port=port)
    backup = make_sink(host="127.0.0.3", port=port)
    _two_mx(dns_server, "pref-abc.test")
    relay = make_relay({"delivery": {"port": port}})
    with relay.smtp() as client:
        for n in range(3):
            client.sendmail(
                "news@sender.test", [f"ann{n}@pref-abc.test"], b"Subject: hi\r\n\r\nhello\r\n"
            )

    messages = preferred.wait_for(3)
    assert sorted(rcpt for m in messages for rcpt in m.rcpt_tos) == [
        "ann0@pref-abc.test",
        "ann1@pref-abc.test",
        "ann2@pref-abc.test",
    ]
    relay.wait_for_log("to=<ann2@pref-abc.test> relay=mx1.pref-abc.test status=delivered")
    wait_until(lambda: not relay.queue_files(), 10, "queue files removed after delivery")
    assert not backup.messages


def test_the_next_mx_when_the_preferred_is_down(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.2", "127.0.0.3")
    backup = make_sink(host="127.0.0.3", port=port)  # nothing listens on 127.0.0.2
    _two_mx(dns_server, "fallback-abc.test")
    relay = make_relay({"delivery": {"port": port}})
    body = b"Subject: plan b\r\n\r\nhello\r\n"
    submit(relay, "news@sender.test", ["ann@fallback-abc.test"], body)

    log = assert_delivered(
        relay, backup, "ann@fallback-abc.test", body, via="mx2.fallback-abc.test"
    )
    assert "mx1.fallback-abc.test[127.0.0.2]" in log, "the preferred MX was not tried first"
    assert "status=queued" not in log, "the backup MX should be used in the same attempt"


def test_bracketed_route_skips_dns(make_sink, make_relay):
    sink = make_sink(host="127.0.0.1")
    unused = free_port()
    relay = make_relay(
        {
            "delivery": {
                "port": unused,
                # routed-nodns-abc.test has no DNS record at all: a lookup would be NXDOMAIN.
                "routes": {"routed-nodns-abc.test": f"[127.0.0.1]:{sink.port}"},
            }
        }
    )
    body = b"Subject: routed\r\n\r\nhello\r\n"
    submit(relay, "news@sender.test", ["ann@routed-nodns-abc.test"], body)

    assert_delivered(relay, sink, "ann@routed-nodns-abc.test", body, via="127.0.0.1")


def test_unbracketed_route_looks_up_the_mx_of_the_route_host(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.1", "127.0.0.2")
    # If relay used the route host's own address record instead of its MX, mail would land here.
    wrong = make_sink(host="127.0.0.1", port=port)
    right = make_sink(host="127.0.0.2", port=port)
    dns_server.add(
        "hub-abc.test. IN MX 10 mx.hub-abc.test.",
        "hub-abc.test. IN A 127.0.0.1",
        "mx.hub-abc.test. IN A 127.0.0.2",
    )
    relay = make_relay(
        {
            "delivery": {
                "port": free_port(),
                "routes": {"routed-mx-abc.test": f"hub-abc.test:{port}"},
            }
        }
    )
    body = b"Subject: via the hub\r\n\r\nhello\r\n"
    submit(relay, "news@sender.test", ["ann@routed-mx-abc.test"], body)

    assert_delivered(relay, right, "ann@routed-mx-abc.test", body, via="mx.hub-abc.test")
    assert not wrong.messages
