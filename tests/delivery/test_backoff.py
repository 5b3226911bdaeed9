"""Automatic backoff as the receiving MX sees it (relay.delivery.backoff): a destination that
answers "421 try later" is slowed down, and gets its pace back after sustained success; one that
refuses connections is left alone for the suspension, whatever the retry schedule says, while
mail to others goes on; a sender blocked there (a block list) is paused at that destination
alone, its recipients kept queued, not bounced, and other senders' mail is delivered.

The rules are the shipped config/backoff.toml, with its durations and recovery shortened (in a
[delivery] backoff_file of the test) so that the stories take seconds. What relay does is
measured at the sinks (tests/support/shaping_sinks.py), by their clock and counts.
"""

from __future__ import annotations

from tests.delivery.helpers import (
    add_mail_domain,
    backoff_file,
    holds_for,
    log_lines,
    shared_port,
    submit,
    wait_until,
)
from tests.support.shaping_sinks import (
    CountingSink,
    RefusingListener,
    ThrottlingSink,
    max_in_window,
)


def _submit_many(relay, sender: str, recipients: list[str]) -> None:
    with relay.smtp() as client:
        for n, recipient in enumerate(recipients):
            client.sendmail(sender, [recipient], f"Subject: {n}\r\n\r\nhi\r\n".encode())


def test_throttled_destination_is_slowed_down_and_recovers(
    dns_server, make_sink, make_relay, tmp_path
):
    # The sink admits 5 transactions a second and answers the 6th "421 4.7.0 try later".
    sink = make_sink(ThrottlingSink, limit=5, window=1.0)
    add_mail_domain(dns_server, "throttled.test", "127.0.0.1")
    backoff = backoff_file(
        tmp_path,
        {"pause-sender": "1h", "suspend": "1m"},
        cut=0.25,
        floor=0.25,
        cut_interval="5s",
        successes=8,
        step=4.0,
    )
    # 16/s on 2 connections; cut to a quarter: 4/s on 1 connection, which the sink takes.
    relay = make_relay(
        {
            "delivery": {
                "port": sink.port,
                "backoff_file": str(backoff),
                "shaping": {"throttled.test": {"max_connections": 2, "rate": ["16/1s"]}},
            }
        }
    )
    recipients = [f"user{n}@throttled.test" for n in range(24)]
    _submit_many(relay, "news@sender.test", recipients)

    log = relay.wait_for_log("destination throttled.test: slowed down")
    (slowed,) = log_lines(log, "destination throttled.test: slowed down")
    assert "421 4.7.0 try later" in slowed
    assert "now 25% of its limits: 1 connections, 4/1s" in slowed
    sink.accept_everything()  # the receiver is fine again; relay has to find out by itself
    relay.wait_for_log("destination throttled.test: recovering after sustained success", 30)
    sink.wait_for(24, timeout=30)
    wait_until(lambda: not relay.queue_files(), 10, "queue files removed after delivery")

    attempts = sink.attempts()
    first_421 = min(a.at for a in attempts if a.refused is not None)
    before = [a.at for a in attempts if a.at < first_421]
    assert max_in_window(before, 0.75) >= 5, "relay was not faster than 4/s before the 421"
    # Until relay has seen 8 successes in a row it stays slow; it cannot have seen them before
    # the sink accepted the 6th message after the 421 (two spare for answers in flight).
    accepted_after = sorted(a.at for a in sink.arrivals() if a.at > first_421)
    slow = [a.at for a in attempts if first_421 <= a.at < accepted_after[5]]
    assert len(slow) >= 5, slow
    # 4 a second, counted in windows a quarter second short of it for network jitter.
    assert max_in_window(slow, 0.75) <= 4, [round(t - first_421, 2) for t in slow]
    # More than the slowed pace allows, so after the recovery: the pace is back.
    assert max_in_window(accepted_after, 0.75) >= 6, [
        round(t - first_421, 2) for t in accepted_after
    ]

    log = relay.log
    assert "now 100% of its limits: 2 connections, 16/1s" in "".join(
        log_lines(log, "destination throttled.test: recovering after sustained success")
    )
    delivered = sorted(rcpt for arrival in sink.arrivals() for rcpt in arrival.rcpt_tos)
    assert delivered == sorted(recipients), "a message was lost or delivered twice"


def test_refusing_destination_is_suspended_and_others_are_delivered(
    dns_server, make_sink, make_relay, tmp_path
):
    port = shared_port("127.0.0.2", "127.0.0.3", "127.0.0.4")
    refusing = make_sink(RefusingListener, host="127.0.0.2", port=port)  # 554 and close
    working = make_sink(CountingSink, host="127.0.0.3", port=port)
    add_mail_domain(dns_server, "refusing.test", "127.0.0.2")
    add_mail_domain(dns_server, "working.test", "127.0.0.3")
    add_mail_domain(dns_server, "closed-port.test", "127.0.0.4")  # nothing listens there
    backoff = backoff_file(tmp_path, {"pause-sender": "1h", "suspend": "3s"})
    relay = make_relay(
        {
            "delivery": {
                "port": port,
                "retry_schedule": ["1s"],
                "backoff_file": str(backoff),
                "shaping": {"refusing.test": {"max_connections": 1}},
            }
        }
    )
    _submit_many(relay, "news@sender.test", ["ann@refusing.test", "bob@refusing.test"])
    submit(relay, "news@sender.test", ["dan@closed-port.test"], b"Subject: no\r\n\r\nhi\r\n")

    first = refusing.wait_for_attempts(1)[0]
    log = relay.wait_for_log("destination refusing.test: suspended for 3s")
    assert log_lines(log, "destination refusing.test: suspended", "554 5.3.2 No SMTP service")
    submit(relay, "news@sender.test", ["cid@working.test"], b"Subject: meanwhile\r\n\r\nhi\r\n")
    (delivered,) = working.wait_for(1)
    assert delivered.rcpt_tos == ["cid@working.test"]
    attempts = refusing.wait_for_attempts(2, timeout=10)
    # On a 1 s retry schedule both messages would have been tried again after a second.
    gap = attempts[1] - first
    assert gap >= 2.75, f"tried again {gap:.2f}s later, before the suspension ended"
    assert working.arrival_times()[0] < attempts[1], "other mail waited for the suspension"
    # A closed port (ECONNREFUSED) is a refusal too.
    log = relay.wait_for_log("destination closed-port.test: suspended for 3s")
    assert log_lines(log, "destination closed-port.test: suspended", "Connection refused")


def test_blocked_sender_is_paused_at_the_destination_alone(
    dns_server, make_sink, make_relay, tmp_path
):
    blocked = "mailer@blocked-sender.test"
    sink = make_sink(
        CountingSink,
        mail_replies={
            blocked: "550 5.7.1 Service unavailable; client host [127.0.0.1] blocked using"
            " Spamhaus; https://www.spamhaus.org/query/ip/127.0.0.1"
        },
    )
    add_mail_domain(dns_server, "strict-dest.test", "127.0.0.1")
    # The blocked sender's own MX is this sink too: a DSN to it would arrive here, from <>.
    add_mail_domain(dns_server, "blocked-sender.test", "127.0.0.1")
    backoff = backoff_file(tmp_path, {"pause-sender": "1m", "suspend": "1m"})
    relay = make_relay(
        {
            "delivery": {
                "port": sink.port,
                "retry_schedule": ["1s"],
                "backoff_file": str(backoff),
                "shaping": {"strict-dest.test": {"max_connections": 1}},
            }
        }
    )
    blocked_recipients = [f"user{n}@strict-dest.test" for n in range(3)]
    _submit_many(relay, blocked, blocked_recipients)
    _submit_many(relay, "mailer@fine-sender.test", ["ann@strict-dest.test", "bob@strict-dest.test"])

    relay.wait_for_log("destination strict-dest.test: sender blocked-sender.test paused there")
    good = sink.wait_for(2)
    assert sorted(rcpt for message in good for rcpt in message.rcpt_tos) == [
        "ann@strict-dest.test",
        "bob@strict-dest.test",
    ]
    assert all(message.mail_from == "mailer@fine-sender.test" for message in good)
    # On a 1 s retry schedule the refused message, and the blocked sender's other two, would
    # have come back by now.
    assert holds_for(lambda: len(sink.attempt_times(blocked)) <= 1, 2.5)
    assert len(sink.attempt_times(blocked)) == 1, sink.attempts()

    log = relay.log
    assert len(relay.queue_files()) == 3, "the blocked sender's mail stays queued"
    assert "status=bounced" not in log
    assert "sender non-delivery notification" not in log
    assert len(sink.messages) == 2, "a DSN was sent to the blocked sender"
    held = log_lines(log, "status=queued", "blocked using Spamhaus")
    assert len(held) == 1, log
    assert "retry in 60s" in held[0] or "retry in 59s" in held[0], held
