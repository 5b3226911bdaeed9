"""The feedback listener of a running relay with bad input: unknown addresses, messages over the
size limit, a truncated bounce, a report that names nobody, a 50 MB bounce. Each gets a clear
answer; nothing crashes and nothing accepted is lost (what cannot be used is kept aside in
var/feedback/unparsed/). A message left in the inbox by a crash is processed at the next start."""

from __future__ import annotations

import json
import re
import smtplib
import time

import pytest

from relay.rewrite.verp import verp_address
from tests.feedback.reports import arf, bounce, original
from tests.scenarios.compliance import add_shop_sender, relay_cli
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess, serve_with_a_taken_port

BOUNCE_DOMAIN = "bounces.shop.example"
COMPLAINTS = "fbl@relay.test"
LIMIT = 200_000
QUEUED = re.compile(r"Queued as ([0-9A-F]+)")


def start(make_relay, max_message_size: int = LIMIT) -> RelayProcess:
    relay = make_relay(
        {
            "feedback": {
                "complaint_addresses": [COMPLAINTS],
                "max_message_size": max_message_size,
            }
        }
    )
    add_shop_sender(relay, bounce_domain=BOUNCE_DOMAIN)
    return relay


@pytest.fixture
def relay(make_relay) -> RelayProcess:
    return start(make_relay)


def reply(answer: tuple[int, bytes]) -> tuple[int, str]:
    code, text = answer
    return code, text.decode().split()[0]


def feed(relay: RelayProcess, recipient: str, content: bytes) -> tuple[int, str]:
    with relay.feedback_smtp() as client:
        client.ehlo("mx.example.us")
        assert client.mail("<>")[0] == 250
        assert client.rcpt(recipient)[0] == 250
        code, text = client.data(content)
    return code, text.decode()


def inbox(relay: RelayProcess, folder: str) -> list[str]:
    return sorted(path.name for path in (relay.directory / "var" / "feedback" / folder).iterdir())


def kept_aside(relay: RelayProcess, reply_text: str) -> str:
    """The name of the accepted message, once relay has set it aside as unparsed."""
    queued = QUEUED.search(reply_text)
    assert queued, reply_text
    name = queued.group(1)
    assert poll(lambda: name in inbox(relay, "unparsed") or None, timeout=20), relay.log
    return name


def test_unknown_addresses_are_refused_and_the_null_sender_accepted(relay):
    with relay.feedback_smtp() as client:
        client.ehlo("mx.example.us")
        assert reply(client.mail("<>")) == (250, "2.0.0")
        assert reply(client.rcpt("postmaster@relay.test")) == (550, "5.1.1")
        other = verp_address("bounces.other.example", "0ABC12", "ann@example.us")
        assert reply(client.rcpt(other)) == (550, "5.1.1")
        assert reply(client.rcpt("unsubscribe@relay.test")) == (250, "2.1.5")


def test_over_the_size_limit_is_refused_with_552(relay):
    with relay.feedback_smtp() as client:
        client.ehlo("mx.example.us")
        assert reply(client.mail("<>", [f"SIZE={LIMIT + 1}"])) == (552, "5.3.4")
        client.rset()
        client.mail("<>")
        client.rcpt(COMPLAINTS)
        too_big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 300
        assert reply(client.data(too_big)) == (552, "5.3.4")
        assert reply(client.noop()) == (250, "2.0.0")  # the session goes on
    assert inbox(relay, "new") == []
    assert inbox(relay, "unparsed") == []


def test_truncated_bounce_and_report_without_recipient_are_kept_aside(relay):
    truncated = bounce("ann@example.us", "5.1.1", "550 user unknown", original("ann@example.us"))
    truncated = truncated[: truncated.index(b"Final-Recipient")]
    code, text = feed(relay, COMPLAINTS, truncated)
    assert code == 250
    kept_aside(relay, text)

    code, text = feed(relay, COMPLAINTS, arf(original(None), original_rcpt_to=None))
    assert code == 250
    name = kept_aside(relay, text)
    relay.wait_for_log(f"feedback {name}: nothing recorded: abuse report about sender 'shop'")
    assert "names no recipient" in relay.log
    assert inbox(relay, "new") == []


def test_a_50_mb_bounce_is_answered_and_the_listener_stays_up(make_relay):
    relay = start(make_relay, max_message_size=64 * 1024 * 1024)
    address = verp_address(BOUNCE_DOMAIN, "0ABC12", "ann@example.us")
    about = original("ann@example.us")
    big = bounce("ann@example.us", "5.1.1", "550 5.1.1 user unknown", about)
    attachment = (b"A" * 76 + b"\r\n") * (50 * 1024 * 1024 // 78)
    big = big.replace(b"--=_report_boundary--", attachment + b"--=_report_boundary--")
    started = time.monotonic()
    code, text = feed(relay, address, big)
    assert code == 250, text
    assert time.monotonic() - started < 60
    assert poll(lambda: inbox(relay, "new") == [] or None, timeout=60), relay.log
    result = relay_cli(relay, "suppressions", "check", "ann@example.us", "--sender", "shop")
    assert result.returncode == 0, relay.log
    assert json.loads(result.stdout)["reason"] == "hard_bounce"


def test_a_message_left_by_a_crash_is_processed_at_start(relay):
    relay.stop()
    address = verp_address(BOUNCE_DOMAIN, "0ABC12", "bob@example.us")
    about = original("bob@example.us")
    content = bounce("bob@example.us", "5.1.1", "550 5.1.1 no such user", about)
    envelope = {"mail_from": "", "recipients": [address], "received_at": 0.0, "client": "::1"}
    left = relay.directory / "var" / "feedback" / "new" / "0660E7F2BF8400246A89EB"
    left.write_bytes(json.dumps(envelope).encode() + b"\n" + content)
    relay.start()
    assert poll(lambda: inbox(relay, "new") == [] or None, timeout=20), relay.log
    result = relay_cli(relay, "suppressions", "check", "bob@example.us", "--sender", "shop")
    assert result.returncode == 0, relay.log


def test_feedback_port_in_use_stops_start_up_with_a_clear_message(tmp_path):
    port, stderr, status = serve_with_a_taken_port(tmp_path, "FEEDBACK")
    assert status == 1, stderr
    assert f"cannot listen on 127.0.0.1:{port} ([feedback] listen): Address already" in stderr
    assert "Traceback" not in stderr


def test_smtplib_sees_the_refusal(relay):
    with relay.feedback_smtp() as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("", ["nobody@relay.test"], b"Subject: x\r\n\r\nx\r\n")
