"""Scheduling as a sender sees it: a password reset submitted behind a campaign at a slow
destination goes out ahead of the campaign (transactional mail first, relay.delivery.scheduler),
and a recipient's retry time survives `kill -9` and a restart (jobs are rebuilt from the spool's
index with their next-attempt time, not made due at once)."""

from __future__ import annotations

import time

import pytest

from tests.delivery.helpers import holds_for, log_lines, wait_until
from tests.support.relay_process import RelayProcess

CAMPAIGN = 12


def _message(n: str, *, transactional: bool = False) -> bytes:
    declared = b"X-Relay-Message-Class: transactional\r\n" if transactional else b""
    return (
        f"Message-ID: <{n}@sender.test>\r\nSubject: {n}\r\n".encode()
        + declared
        + f"\r\nbody of {n}\r\n".encode()
    )


def _message_id(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode().strip("<>").split("@")[0]
    raise AssertionError(f"no Message-ID in {data[:200]!r}")


@pytest.mark.parametrize(
    "reset_from",
    [
        # The shop's own password reset: only its class puts it ahead of the shop's campaign.
        "accounts@shop.test",
        # Another sender's: its class, and its turn among the senders, put it ahead.
        "reset@bank.test",
    ],
)
def test_transactional_mail_overtakes_a_queued_campaign(make_relay, make_sink, reset_from):
    sink = make_sink(host="127.0.0.1")
    relay = make_relay(
        {
            "delivery": {
                "routes": {"dest.test": f"[127.0.0.1]:{sink.port}"},
                "shaping": {"dest.test": {"max_connections": 1, "rate": ["5/1s"]}},
            }
        }
    )
    with relay.smtp() as client:
        for n in range(CAMPAIGN):
            client.sendmail("news@shop.test", [f"fan{n}@dest.test"], _message(f"campaign-{n}"))
        arrived_before = len(sink.messages)
        client.sendmail(reset_from, ["ann@dest.test"], _message("reset", transactional=True))
    assert arrived_before < CAMPAIGN // 2, "the campaign was mostly out before the reset came"

    messages = sink.wait_for(CAMPAIGN + 1, timeout=30)
    order = [_message_id(message.data) for message in messages]
    position = order.index("reset")
    assert position < arrived_before + 3, f"reset was number {position}: {order}"
    assert sorted(order) == sorted(["reset", *(f"campaign-{n}" for n in range(CAMPAIGN))])
    assert holds_for(lambda: len(sink.messages) == CAMPAIGN + 1, 1.0), "duplicates arrived"
    wait_until(lambda: not relay.queue_files(), 10, "queue files removed after delivery")


def test_a_retry_time_survives_kill_9_and_restart(make_relay, make_sink):
    retry = 4.0
    jitter = 0.2  # [delivery] retry_jitter, the default
    sink = make_sink(host="127.0.0.1")
    sink.rcpt_replies["ann@later.test"].append("451 4.3.0 try again later")
    relay = make_relay(
        {
            "delivery": {
                "routes": {"later.test": f"[127.0.0.1]:{sink.port}"},
                "retry_schedule": [f"{retry:.0f}s"],
                "retry_jitter": jitter,
            }
        }
    )
    with relay.smtp() as client:
        client.sendmail("news@sender.test", ["ann@later.test"], _message("later"))
    wait_until(lambda: not sink.rcpt_replies["ann@later.test"], 10, "a first attempt")
    deferred_at = time.time()
    relay.wait_for_log("to=<ann@later.test> relay=127.0.0.1 status=queued")
    relay.kill()

    restarted = RelayProcess(relay.directory, relay.config).start()
    try:
        restarted_at = time.time()
        earliest = deferred_at + retry * (1 - jitter)
        latest = deferred_at + retry * (1 + jitter)
        assert restarted_at < earliest - 0.5, "the restart took too long to tell anything"
        assert holds_for(lambda: not sink.messages, earliest - 0.2 - time.time()), (
            f"retried {time.time() - deferred_at:.1f}s after the deferral, before its time"
        )
        (message,) = sink.wait_for(1, timeout=latest + 5 - time.time())
        arrived = time.time() - deferred_at
        assert message.rcpt_tos == ["ann@later.test"]
        assert retry * (1 - jitter) - 0.3 <= arrived <= retry * (1 + jitter) + 1.5, arrived
        restarted.wait_for_log("to=<ann@later.test> relay=127.0.0.1 status=delivered")
        delivered = log_lines(restarted.log, "to=<ann@later.test>", "status=delivered")
        assert len(delivered) == 1, restarted.log
        assert holds_for(lambda: len(sink.messages) == 1, 1.0), "delivered more than once"
    finally:
        restarted.stop()
    restarted.assert_no_traceback()
