"""A recipient that keeps failing temporarily is retried until [delivery] max_lifetime, then ends
`expired` with a DSN (Status 4.4.7, RFC 3463) to the sender, and relay stops trying."""

from __future__ import annotations

from collections.abc import Callable

from tests.delivery.helpers import (
    BounceMx,
    backoff_file,
    destination_and_senders_mx,
    holds_for,
    log_lines,
    receive_dsn,
    submit,
    wait_until,
)
from tests.support.relay_process import RelayProcess

LIFETIME = 4  # seconds; retried every second


def _expiring_mail(dns_server, make_sink, domain: str, *, destination_listens: bool) -> BounceMx:
    """The MX sinks for mail to `domain` from its sender domain `sender-<domain>`."""
    return destination_and_senders_mx(
        dns_server, make_sink, domain, f"sender-{domain}", destination_listens=destination_listens
    )


def _submit_until_expired(
    make_relay, tmp_path, mx: BounceMx, domain: str, diagnostic: str, expired_dsn: str
) -> tuple[RelayProcess, str]:
    """Submit to `ann@<domain>`; check the expiry DSN (with `diagnostic`) at the sender's MX and
    the single `expired` record (with `expired_dsn`) in the log; return relay and the recipient."""
    # The shipped backoff table suspends a destination that refuses connections for 2 minutes,
    # past the whole lifetime; a second will do.
    backoff = backoff_file(tmp_path, {"pause-sender": "1h", "suspend": "1s"})
    relay = make_relay(
        mx.relay_config(
            retry_schedule=["1s"], max_lifetime=f"{LIFETIME}s", backoff_file=str(backoff)
        )
    )
    sender, recipient = f"news@sender-{domain}", f"ann@{domain}"
    submit(relay, sender, [recipient], b"Subject: never\r\n\r\nhello\r\n")

    _, dsn = receive_dsn(mx.senders_mx, sender, timeout=LIFETIME + 15)
    fields = dsn.recipient(recipient)
    assert fields["Action"] == "failed"
    assert fields["Status"] == "4.4.7"
    assert diagnostic in fields["Diagnostic-Code"]

    log = relay.wait_for_log(f"to=<{recipient}> relay=mx.{domain} status=expired")
    assert len(log_lines(log, f"to=<{recipient}>", f"status=expired dsn={expired_dsn}")) == 1, log
    wait_until(lambda: not relay.queue_files(), 10, "message and DSN leave the queue")
    return relay, recipient


def _assert_no_attempts_after_expiry(attempts: Callable[[], int]) -> None:
    seen = attempts()
    # Once a second for four seconds, plus the one at the deadline: never dozens.
    assert 2 <= seen <= LIFETIME + 3, f"{seen} attempts within a {LIFETIME}s lifetime"
    assert holds_for(lambda: attempts() == seen, 2.0), "relay kept trying after expiry"


def test_451_until_the_lifetime_ends_expires_with_a_dsn(
    dns_server, make_sink, make_relay, tmp_path
):
    mx = _expiring_mail(dns_server, make_sink, "expire-data.test", destination_listens=True)
    destination = mx.destination
    scripted = 100
    destination.data_replies.extend(["451 4.3.0 try later"] * scripted)
    _submit_until_expired(
        make_relay, tmp_path, mx, "expire-data.test", "451 4.3.0 try later", "4.3.0"
    )

    _assert_no_attempts_after_expiry(lambda: scripted - len(destination.data_replies))
    assert not destination.messages
    assert len(mx.senders_mx.messages) == 1


def test_no_listener_until_the_lifetime_ends_expires_with_a_dsn(
    dns_server, make_sink, make_relay, tmp_path
):
    mx = _expiring_mail(dns_server, make_sink, "expire-down.test", destination_listens=False)
    relay, recipient = _submit_until_expired(
        make_relay, tmp_path, mx, "expire-down.test", "connect to mx.expire-down.test", "4.4.1"
    )

    _assert_no_attempts_after_expiry(
        lambda: len(log_lines(relay.log, f"to=<{recipient}>", "status="))
    )
    assert len(mx.senders_mx.messages) == 1
