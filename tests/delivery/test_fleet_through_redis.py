"""Several relay nodes on one Redis ([stores] backend = "redis") as the receiving MX and the
mailers see them: a destination's per-minute limit holds for the fleet, counted at the sink; and
when redis-server dies mid-traffic, the nodes answer 451 4.3.0 instead of failing open, log the
outage once, lose nothing they accepted, and take mail again by themselves once it is back."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.helpers import add_mail_domain, holds_for, wait_until
from tests.support.dns_server import DnsServer
from tests.support.network import free_port
from tests.support.redis_server import RedisServer
from tests.support.shaping_sinks import CountingSink


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, as it is stopped and killed."""
    server = RedisServer(tmp_path / "redis", free_port()).start()
    yield server
    server.stop()


def start_fleet(
    make_relay: Callable[..., Any],
    dns_server: DnsServer,
    redis: RedisServer,
    sink: CountingSink,
    tmp_path: Path,
    domain: str,
    limits: dict[str, Any],
) -> list[Any]:
    """Two nodes on `redis`, delivering mail for `domain` to `sink` within `limits`."""
    add_mail_domain(dns_server, domain, "127.0.0.1")
    config = {
        # One HMAC key for the fleet: every node must hash an address alike.
        "stores": {"backend": "redis", "hmac_key_file": str(tmp_path / "address-hmac.key")},
        "redis": {"url": redis.url, "key_prefix": "fleet:", "timeout": 0.5},
        "delivery": {"port": sink.port, "shaping": {domain: limits}},
    }
    return [make_relay(config, name="node-a"), make_relay(config, name="node-b")]


def message(n: int) -> bytes:
    return f"Subject: fleet {n}\r\nMessage-ID: <fleet-{n}@sender.test>\r\n\r\nhello\r\n".encode()


def test_two_nodes_together_keep_a_destinations_per_minute_limit(
    dns_server, make_sink, make_relay, redis, tmp_path
):
    sink = make_sink(CountingSink)
    nodes = start_fleet(
        make_relay, dns_server, redis, sink, tmp_path, "fleet-rated.test", {"rate": ["6/1m"]}
    )
    clients = [node.smtp() for node in nodes]
    for n in range(12):  # alternately, so both nodes have mail waiting for the budget
        clients[n % 2].sendmail("news@sender.test", [f"u{n}@fleet-rated.test"], message(n))
    for client in clients:
        client.quit()

    wait_until(lambda: len(sink.attempts()) >= 6, 20, "the first six messages delivered")
    # Each node alone would send six in the minute: twelve would arrive at once.
    assert holds_for(lambda: len(sink.attempts()) == 6, 5), len(sink.attempts())
    queued = sum(len(node.queue_files()) for node in nodes)
    assert queued == 6, f"{queued} messages queued; the other six went to the sink"
    delivered = {rcpt for arrival in sink.arrivals() for rcpt in arrival.rcpt_tos}
    assert len(delivered) == 6


class Mailer:
    """Submits messages 0..count-1 to the nodes in turn, one transaction each, and submits a
    message again after a temporary refusal, as a mailer's queue would; records every reply.
    After `pause_after` accepted messages it waits until `resume` is set, so that the test acts
    between two messages."""

    def __init__(self, nodes: list[Any], count: int, pause_after: int) -> None:
        self.nodes = nodes
        self.accepted: dict[int, str] = {}  # message -> the node that answered 250
        self.refusals: list[tuple[int, str]] = []  # (code, enhanced status and text)
        self.unexpected: list[str] = []
        self.paused = threading.Event()
        self.resume = threading.Event()
        self._count = count
        self._pause_after = pause_after
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Mailer:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        n = turn = 0
        deadline = time.monotonic() + 90
        while n < self._count and time.monotonic() < deadline:
            if n == self._pause_after and not self.paused.is_set():
                self.paused.set()
                self.resume.wait(30)
            node = self.nodes[turn % len(self.nodes)]
            turn += 1
            try:
                with node.smtp() as client:
                    client.sendmail("news@sender.test", [f"u{n}@fleet-down.test"], message(n))
            except smtplib.SMTPRecipientsRefused as exc:
                ((code, text),) = exc.recipients.values()
                self.refusals.append((code, text.decode()))
            except smtplib.SMTPResponseException as exc:
                self.refusals.append((exc.smtp_code, exc.smtp_error.decode()))
            except (OSError, smtplib.SMTPException) as exc:  # asserted on by the test
                self.unexpected.append(repr(exc))
            else:
                self.accepted[n] = node.directory.name
                n += 1


def test_redis_killed_mid_traffic_defers_loses_nothing_and_recovers(
    dns_server, make_sink, make_relay, redis, tmp_path
):
    sink = make_sink(CountingSink)
    nodes = start_fleet(
        make_relay, dns_server, redis, sink, tmp_path, "fleet-down.test", {"max_connections": 2}
    )
    mailer = Mailer(nodes, 60, pause_after=15).start()
    assert mailer.paused.wait(30), "traffic flowing before the kill"
    redis.kill()
    mailer.resume.set()
    wait_until(lambda: len(mailer.refusals) >= 6, 30, "refusals while Redis is down")
    accepted_before_restart = len(mailer.accepted)
    redis.start()  # empty (no persistence), as after losing its data
    mailer.join(90)

    assert not mailer.unexpected, mailer.unexpected
    assert len(mailer.accepted) == 60, "traffic did not resume after Redis came back"
    assert accepted_before_restart < 60
    assert all(code == 451 for code, _ in mailer.refusals), mailer.refusals
    assert all(text.startswith("4.3.0") for _, text in mailer.refusals), mailer.refusals
    # Every message answered 250 reaches the sink, once.
    sink.wait_for(60, timeout=60)
    subjects = sorted(
        int(arrival.data.split(b"Subject: fleet ")[1].split(b"\r\n")[0])
        for arrival in sink.messages
    )
    assert subjects == list(range(60)), "a message was lost or delivered twice"
    for node in nodes:
        wait_until(lambda node=node: not node.queue_files(), 20, "queues empty")
    for node in nodes:  # both answered while Redis was down: one incident each
        log = node.log
        assert log.count("store lookups failing") == 1, log
        assert log.count("store lookups succeed again") == 1, log
