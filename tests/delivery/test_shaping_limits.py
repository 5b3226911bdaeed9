"""Traffic shaping as the receiving MX sees it (relay.delivery.shaping, [delivery.shaping]): never
more connections open to a destination than its max_connections, never more messages over one
connection than its messages_per_connection, never more messages in any period than its rate;
domains whose MX hosts end in a provider's mx_suffixes share the provider's limits; and a slow
destination holds up nobody else's mail.

Everything is measured at the sinks (tests/support/shaping_sinks.py), by their clock and
counts, not from relay's log.
"""

from __future__ import annotations

from tests.delivery.helpers import add_mail_domain, shared_port, wait_until
from tests.support.shaping_sinks import CountingSink, max_in_window


def _submit_many(relay, sender: str, recipients: list[str]) -> None:
    """One message per recipient, over one SMTP session (as a mailer sends a batch)."""
    with relay.smtp() as client:
        for n, recipient in enumerate(recipients):
            body = f"Subject: batch {n}\r\nMessage-ID: <batch-{n}@sender.test>\r\n\r\nhi\r\n"
            client.sendmail(sender, [recipient], body.encode())


def test_connections_and_messages_per_connection_stay_within_the_limits(
    dns_server, make_sink, make_relay
):
    # Each transaction takes the sink ~0.15 s (three replies 0.05 s late), so 30 messages
    # submitted in a burst pile up: unlimited, relay would open many connections at once.
    sink = make_sink(CountingSink, reply_delay=0.05)
    add_mail_domain(dns_server, "capped-conn.test", "127.0.0.1")
    relay = make_relay(
        {
            "delivery": {
                "port": sink.port,
                "shaping": {
                    "capped-conn.test": {"max_connections": 2, "messages_per_connection": 3}
                },
            }
        }
    )
    recipients = [f"user{n}@capped-conn.test" for n in range(30)]
    _submit_many(relay, "news@sender.test", recipients)

    sink.wait_for(30, timeout=40)
    wait_until(lambda: not relay.queue_files(), 10, "queue files removed after delivery")
    connections = sink.connections()
    assert sink.max_open <= 2, f"{sink.max_open} connections open at once"
    assert sink.max_open == 2, "the burst never needed a second connection: nothing was tested"
    per_connection = [len(connection.mail_froms) for connection in connections]
    assert max(per_connection) <= 3, per_connection
    assert max(per_connection) == 3, f"connections were never reused: {per_connection}"
    assert sum(connection.messages for connection in connections) == 30
    delivered = sorted(rcpt for arrival in sink.arrivals() for rcpt in arrival.rcpt_tos)
    assert delivered == sorted(recipients), "a message was lost or delivered twice"


def test_a_rate_holds_in_every_window(dns_server, make_sink, make_relay):
    sink = make_sink(CountingSink)
    add_mail_domain(dns_server, "rated.test", "127.0.0.1")
    relay = make_relay(
        {"delivery": {"port": sink.port, "shaping": {"rated.test": {"rate": ["5/2s"]}}}}
    )
    recipients = [f"user{n}@rated.test" for n in range(12)]
    _submit_many(relay, "news@sender.test", recipients)

    sink.wait_for(12, timeout=30)  # 5 + 5 + 2: at least two full periods
    wait_until(lambda: not relay.queue_files(), 10, "queue files removed after delivery")
    # relay counts a message when it takes it; the sink when MAIL arrives, a connection setup
    # later. Windows half a second shorter than the period absorb that jitter on a busy machine;
    # unlimited, all 12 would arrive within a fraction of a second.
    attempts = sink.attempt_times()
    assert len(attempts) == 12, "a message was attempted twice"
    assert max_in_window(attempts, 1.5) <= 5, sorted(round(t - attempts[0], 2) for t in attempts)
    assert max(attempts) - min(attempts) >= 3.5, "12 messages at 5/2s take two periods"
    delivered = sorted(rcpt for arrival in sink.arrivals() for rcpt in arrival.rcpt_tos)
    assert delivered == sorted(recipients)


def test_domains_of_one_provider_share_its_connections(dns_server, make_sink, make_relay):
    sink = make_sink(CountingSink, reply_delay=0.05)
    # Two domains, each with an MX of its own under bigmail.test, the provider's suffix.
    dns_server.add(
        "first-big.test. IN MX 10 mx-a.bigmail.test.",
        "second-big.test. IN MX 10 mx-b.bigmail.test.",
        "mx-a.bigmail.test. IN A 127.0.0.1",
        "mx-b.bigmail.test. IN A 127.0.0.1",
    )
    relay = make_relay(
        {
            "delivery": {
                "port": sink.port,
                "shaping": {"bigmail": {"mx_suffixes": ["bigmail.test"], "max_connections": 1}},
            }
        }
    )
    recipients = [f"user{n}@{('first-big', 'second-big')[n % 2]}.test" for n in range(12)]
    _submit_many(relay, "news@sender.test", recipients)

    sink.wait_for(12, timeout=30)
    wait_until(lambda: not relay.queue_files(), 10, "queue files removed after delivery")
    # Apart, each domain would get the default 20 connections, and keep one idle connection
    # open of its own: two at once at least.
    assert sink.max_open == 1, f"{sink.max_open} connections open at once to the provider"
    delivered = sorted(rcpt for arrival in sink.arrivals() for rcpt in arrival.rcpt_tos)
    assert delivered == sorted(recipients)


def test_a_slow_destination_does_not_hold_up_another(dns_server, make_sink, make_relay):
    port = shared_port("127.0.0.2", "127.0.0.3")
    # Each reply 0.8 s late: a transaction takes the slow MX 2.4 s; one connection at a time.
    slow = make_sink(CountingSink, host="127.0.0.2", port=port, reply_delay=0.8)
    fast = make_sink(CountingSink, host="127.0.0.3", port=port)
    add_mail_domain(dns_server, "slow-mx.test", "127.0.0.2")
    add_mail_domain(dns_server, "fast-mx.test", "127.0.0.3")
    relay = make_relay(
        {"delivery": {"port": port, "shaping": {"slow-mx.test": {"max_connections": 1}}}}
    )
    _submit_many(relay, "news@sender.test", [f"user{n}@slow-mx.test" for n in range(2)])
    wait_until(lambda: slow.attempts(), 10, "the slow MX got its first MAIL")
    _submit_many(relay, "news@sender.test", [f"user{n}@fast-mx.test" for n in range(3)])

    fast.wait_for(3, timeout=20)
    # The slow MX accepts its first message 2.4 s after that MAIL; the fast one's mail came
    # meanwhile, not after the slow destination's queue.
    assert not slow.arrivals(), "mail to the fast MX waited for the slow one"
    assert len(slow.attempts()) == 1, "max_connections 1: the slow MX gets one at a time"
    slow.wait_for(2, timeout=30)
    assert slow.max_open == 1
