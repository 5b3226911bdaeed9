"""250 means durable (DESIGN §3): a message answered 250 survives `kill -9` of relay, and a new
relay process on the same spool delivers it exactly once, with its content intact."""

from __future__ import annotations

from collections import Counter
from email.parser import BytesHeaderParser

from tests.delivery.helpers import backoff_file, holds_for, log_lines, wait_until
from tests.support.network import free_port
from tests.support.relay_process import RelayProcess


def _crashed_relay(make_relay, tmp_path, domain: str) -> tuple[RelayProcess, int]:
    """A relay routing `domain` to a port where nothing listens yet, so that mail stays queued.
    The refused connections suspend the destination (config/backoff.toml) for a second, not the
    shipped two minutes, so that the sink started later is tried soon."""
    port = free_port()
    backoff = backoff_file(tmp_path, {"pause-sender": "1h", "suspend": "1s"})
    relay = make_relay(
        {"delivery": {"routes": {domain: f"[127.0.0.1]:{port}"}, "backoff_file": str(backoff)}}
    )
    return relay, port


def _restart(relay: RelayProcess) -> RelayProcess:
    """A new relay process on the same directory, spool and configuration."""
    return RelayProcess(relay.directory, relay.config).start()


def test_message_answered_250_survives_kill_9(make_relay, make_sink, tmp_path):
    relay, port = _crashed_relay(make_relay, tmp_path, "crash-one.test")
    body = (
        b"From: <news@sender.test>\r\n"
        b"To: <ann@crash-one.test>\r\n"
        b"Subject: survives a crash\r\n"
        b"Message-ID: <crash-one@sender.test>\r\n"
        b"\r\n"
        b"line one\r\n"
        b".leading dot\r\n"
        b"last line\r\n"
    )
    with relay.smtp() as client:
        client.ehlo()
        client.mail("news@sender.test")
        client.rcpt("ann@crash-one.test")
        code, reply = client.data(body)
        assert code == 250, reply
        relay.kill()

    queued = relay.queue_files()
    assert len(queued) == 1, "the accepted message is not in the queue directory"
    assert body in queued[0].read_bytes()

    sink = make_sink(host="127.0.0.1", port=port)
    restarted = _restart(relay)
    try:
        (message,) = sink.wait_for(1)
        assert message.rcpt_tos == ["ann@crash-one.test"]
        assert message.mail_from == "news@sender.test"
        assert message.data.endswith(body), "the content changed on the way"
        assert message.data.count(b"Received: ") == 1
        restarted.wait_for_log("to=<ann@crash-one.test> relay=127.0.0.1 status=delivered")
        wait_until(lambda: not restarted.queue_files(), 10, "queue file removed after delivery")
        assert holds_for(lambda: len(sink.messages) == 1, 2.0), "delivered more than once"
        delivered = log_lines(restarted.log, "to=<ann@crash-one.test>", "status=delivered")
        assert len(delivered) == 1, restarted.log
    finally:
        restarted.stop()
    restarted.assert_no_traceback()


def test_fifty_messages_survive_kill_9_exactly_once(make_relay, make_sink, tmp_path):
    relay, port = _crashed_relay(make_relay, tmp_path, "crash-many.test")
    count = 50
    ids = [f"<crash-{n}@sender.test>" for n in range(count)]
    with relay.smtp() as client:
        for n, message_id in enumerate(ids):
            client.sendmail(
                "news@sender.test",
                [f"rcpt{n}@crash-many.test"],
                f"Message-ID: {message_id}\r\nSubject: number {n}\r\n\r\nbody {n}\r\n".encode(),
            )
        # sendmail raises unless every message was answered 250.
        relay.kill()
    assert len(relay.queue_files()) == count

    sink = make_sink(host="127.0.0.1", port=port)
    restarted = _restart(relay)
    try:
        sink.wait_for(count, timeout=30)
        wait_until(lambda: not restarted.queue_files(), 15, "queue files removed after delivery")
        assert holds_for(lambda: len(sink.messages) == count, 2.0), "duplicates arrived"
        parser = BytesHeaderParser()
        seen = Counter(parser.parsebytes(m.data)["Message-ID"] for m in sink.messages)
        assert set(seen) == set(ids), f"lost: {sorted(set(ids) - set(seen))}"
        assert all(n == 1 for n in seen.values()), {k: n for k, n in seen.items() if n > 1}
        for message in sink.messages:
            (rcpt,) = message.rcpt_tos
            n = rcpt.removeprefix("rcpt").removesuffix("@crash-many.test")
            assert message.data.endswith(f"\r\n\r\nbody {n}\r\n".encode()), "content mixed up"
    finally:
        restarted.stop()
    restarted.assert_no_traceback()


def test_crash_between_recording_and_removing_delivers_nothing_twice(
    make_relay, make_sink, tmp_path
):
    """The last step after delivery is removing the queue file; a crash just before it leaves
    the file of a message whose recipients are all final. The next relay must not deliver it
    again, and must not keep the file forever."""
    relay, port = _crashed_relay(make_relay, tmp_path, "crash-late.test")
    body = b"Message-ID: <crash-late@sender.test>\r\nSubject: once only\r\n\r\nhello\r\n"
    with relay.smtp() as client:
        client.sendmail("news@sender.test", ["ann@crash-late.test"], body)
    (queue_file,) = relay.queue_files()
    saved = queue_file.read_bytes()

    sink = make_sink(host="127.0.0.1", port=port)
    sink.wait_for(1)
    wait_until(lambda: not relay.queue_files(), 10, "queue file removed after delivery")
    relay.kill()
    # The state a kill -9 leaves when it lands between recording "delivered" and the unlink.
    queue_file.write_bytes(saved)

    restarted = _restart(relay)
    try:
        assert holds_for(lambda: len(sink.messages) == 1, 2.0), "delivered a second time"
        wait_until(lambda: not restarted.queue_files(), 5, "left-over queue file cleaned up")
    finally:
        restarted.stop()
    restarted.assert_no_traceback()
