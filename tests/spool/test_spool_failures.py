"""The spool under real failures: a write that cannot complete answers 451 4.3.0 and keeps
nothing; the queue files alone are enough to rebuild a lost index; an unreadable queue file is
set aside instead of being retried forever."""

from __future__ import annotations

import shutil
import smtplib

import pytest

from tests.support.relay_process import RelayProcess

MESSAGE = b"Subject: spool test\r\nMessage-ID: <spool-1@sender.test>\r\n\r\nbody\r\n"


def test_storage_failure_answers_451_and_keeps_nothing(make_relay, sink):
    relay = make_relay({"delivery": {"routes": {"dest.test": f"[127.0.0.1]:{sink.port}"}}})
    tmp_dir = relay.spool / "tmp"
    shutil.rmtree(tmp_dir)
    tmp_dir.write_text("a file where the spool expects a directory\n")
    with relay.smtp() as client, pytest.raises(smtplib.SMTPDataError) as refused:
        client.sendmail("a@sender.test", ["b@dest.test"], MESSAGE)
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.0 ")
    assert relay.queue_files() == []
    relay.wait_for_log("not accepted, answered 451")

    tmp_dir.unlink()
    tmp_dir.mkdir()
    with relay.smtp() as client:
        client.sendmail("a@sender.test", ["b@dest.test"], MESSAGE)
    (message,) = sink.wait_for(1)
    assert message.data.endswith(MESSAGE)


def test_lost_index_is_rebuilt_from_queue_files(make_relay, make_sink, tmp_path):
    port_without_listener = make_sink().port
    relay = make_relay(
        {"delivery": {"routes": {"dest.test": f"[127.0.0.2]:{port_without_listener}"}}}
    )
    with relay.smtp() as client:
        client.sendmail("a@sender.test", ["b@dest.test", "c@dest.test"], MESSAGE)
    relay.stop()
    assert len(relay.queue_files()) == 1
    for index_file in relay.spool.glob("index.sqlite*"):
        index_file.unlink()

    sink = make_sink(host="127.0.0.2", port=port_without_listener)
    restarted = RelayProcess(relay.directory, relay.config).start()
    try:
        messages = sink.wait_for(1)
        assert sorted(messages[0].rcpt_tos) == ["b@dest.test", "c@dest.test"]
        assert messages[0].data.endswith(MESSAGE)
        restarted.wait_for_log("recovered from the queue directory")
    finally:
        restarted.stop()
    restarted.assert_no_traceback()


def test_unreadable_queue_file_is_set_aside(make_relay):
    relay = make_relay()
    relay.stop()
    poison = relay.spool / "queue" / "0000DEADBEEF"
    poison.write_bytes(b"this is not a relay queue file\n")
    restarted = RelayProcess(relay.directory, relay.config).start()
    try:
        restarted.wait_for_log("0000DEADBEEF: 0000DEADBEEF: not a relay queue file")
        assert not poison.exists()
        assert (relay.spool / "bad" / "0000DEADBEEF").read_bytes().startswith(b"this is not")
    finally:
        restarted.stop()
    restarted.assert_no_traceback()
