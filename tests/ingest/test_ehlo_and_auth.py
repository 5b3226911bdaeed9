"""EHLO extensions before and after STARTTLS, SMTP AUTH, the open-relay refusal and enhanced
status codes on every reply (RFC 5321, RFC 3207, RFC 4954, RFC 2034)."""

from __future__ import annotations

import base64
import re
import smtplib
from collections.abc import Iterator

import pytest

from relay.ingest.auth import hash_password
from tests.ingest.wire import Wire, unverified_tls

PASSWORD = "s3cret"
MESSAGE = b"Subject: auth\r\n\r\nsent after AUTH\r\n"


def ehlo_lines(client: smtplib.SMTP) -> list[str]:
    code, text = client.ehlo("client.test")
    assert code == 250, text
    return text.decode().splitlines()[1:]


def keywords(lines: list[str]) -> dict[str, str]:
    """EHLO keyword (upper-case) -> the rest of its line."""
    return {line.split(" ", 1)[0].upper(): line.partition(" ")[2] for line in lines}


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def authenticated_config(sink, password_hash) -> dict:
    """Only the user 'mailer' may relay: no trusted networks, not even loopback."""
    return {
        "smtp": {
            "users": [{"name": "mailer", "password_hash": password_hash}],
            "trusted_networks": [],
        },
        "delivery": {"routes": {"dest.test": f"[127.0.0.1]:{sink.port}"}},
    }


def starttls_and_ehlo(client: smtplib.SMTP) -> None:
    """STARTTLS (not checking relay's self-signed certificate), then EHLO again (RFC 3207)."""
    client.starttls(context=unverified_tls())
    client.ehlo("client.test")


def assert_reply(reply: tuple[int, bytes], code: int, status: bytes) -> None:
    """An smtplib (code, text) reply has `code` and its text starts with the enhanced `status`."""
    actual_code, text = reply
    assert (actual_code, text.split()[0]) == (code, status), text


@pytest.fixture
def client_after_starttls(make_relay, authenticated_config) -> Iterator[smtplib.SMTP]:
    """A client of a relay where only 'mailer' may relay, after EHLO, STARTTLS and EHLO."""
    relay = make_relay(authenticated_config)
    with relay.smtp() as client:
        client.ehlo("client.test")
        starttls_and_ehlo(client)
        yield client


def authenticate(client: smtplib.SMTP, mechanism: str, user: str, password: str):
    """Run AUTH with one mechanism; return (code, text) instead of raising."""
    client.user, client.password = user, password
    authobject = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login}[mechanism]
    try:
        return client.auth(mechanism, authobject)
    except smtplib.SMTPAuthenticationError as exc:
        return exc.smtp_code, exc.smtp_error


def test_ehlo_before_tls_advertises_extensions_but_not_auth(make_relay):
    relay = make_relay({"smtp": {"max_message_size": 123456}})
    with relay.smtp() as client:
        lines = ehlo_lines(client)
    advertised = keywords(lines)
    assert advertised["SIZE"] == "123456"
    for keyword in ("8BITMIME", "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES", "STARTTLS"):
        assert keyword in advertised, lines
    assert "AUTH" not in advertised, lines


def test_ehlo_after_starttls_advertises_auth_and_not_starttls(make_relay):
    relay = make_relay()
    with relay.smtp() as client:
        client.ehlo("client.test")
        code, _ = client.starttls(context=unverified_tls())
        assert code == 220
        lines = ehlo_lines(client)
    advertised = keywords(lines)
    assert set(advertised["AUTH"].split()) == {"PLAIN", "LOGIN"}, lines
    assert "STARTTLS" not in advertised, lines
    for keyword in ("SIZE", "8BITMIME", "SMTPUTF8", "PIPELINING", "ENHANCEDSTATUSCODES"):
        assert keyword in advertised, lines


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_before_tls_is_refused_with_538(make_relay, sink, authenticated_config, mechanism):
    relay = make_relay(authenticated_config)
    initial = base64.b64encode(b"\0mailer\0" + PASSWORD.encode()).decode()
    argument = f"PLAIN {initial}" if mechanism == "PLAIN" else "LOGIN"
    with relay.smtp() as client:
        client.ehlo("client.test")
        assert_reply(client.docmd("AUTH", argument), 538, b"5.7.11")
        # Still not authenticated: the transaction is refused.
        assert_reply(client.docmd("MAIL", "FROM:<a@sender.test>"), 530, b"5.7.0")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_over_tls_with_good_credentials_allows_relaying(
    client_after_starttls, sink, mechanism
):
    client = client_after_starttls
    assert_reply(authenticate(client, mechanism, "mailer", PASSWORD), 235, b"2.7.0")
    refused = client.sendmail("news@sender.test", ["ann@dest.test"], MESSAGE)
    assert refused == {}
    (message,) = sink.wait_for(1)
    assert message.mail_from == "news@sender.test"
    assert message.rcpt_tos == ["ann@dest.test"]
    assert message.data.endswith(MESSAGE)
    # RFC 3848: submitted over TLS with AUTH.
    assert re.search(rb"with ESMTPSA id ", message.data.split(b"\r\n\r\n", 1)[0]), message.data


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_with_wrong_password_is_refused_with_535(client_after_starttls, mechanism):
    client = client_after_starttls
    assert_reply(authenticate(client, mechanism, "mailer", "wrong"), 535, b"5.7.8")
    assert_reply(authenticate(client, mechanism, "nobody", PASSWORD), 535, b"5.7.8")
    assert_reply(client.docmd("MAIL", "FROM:<a@sender.test>"), 530, b"5.7.0")


def test_unauthenticated_client_outside_trusted_networks_cannot_relay(
    make_relay, authenticated_config
):
    relay = make_relay(authenticated_config)
    with relay.smtp() as client:
        client.ehlo("client.test")
        assert_reply(client.docmd("MAIL", "FROM:<a@sender.test>"), 530, b"5.7.0")
        # TLS alone does not make the client trusted.
        starttls_and_ehlo(client)
        assert_reply(client.docmd("MAIL", "FROM:<a@sender.test>"), 530, b"5.7.0")
        assert_reply(client.docmd("RCPT", "TO:<ann@dest.test>"), 530, b"5.7.0")
    assert relay.queue_files() == []


def test_unauthenticated_client_on_trusted_loopback_may_send(make_relay, sink):
    relay = make_relay({"delivery": {"routes": {"dest.test": f"[127.0.0.1]:{sink.port}"}}})
    with relay.smtp() as client:
        refused = client.sendmail("news@sender.test", ["bob@dest.test"], MESSAGE)
        assert refused == {}
    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == ["bob@dest.test"]
    assert message.data.endswith(MESSAGE)


SAMPLE_COMMANDS = [
    b"NOOP",
    b"RSET",
    b"DATA",  # before MAIL: 503
    b"RCPT TO:<ann@dest.test>",  # before MAIL: 503
    b"MAIL FROM:<news@sender.test>",
    b"MAIL FROM:<again@sender.test>",  # 503 sender already given
    b"RCPT TO:<a@@dest.test>",
    b"RCPT TO:<ann@dest.test>",
    b"RCPT TO:<ann@dest.test> NOTIFY=NEVER",
    b"RSET",
    b"MAIL TO:<x@sender.test>",
    b"MAIL FROM:<news@sender.test> FOO=BAR",
    b"XYZZY",
    b"VRFY ann@dest.test",
    b"HELP",
    b"STARTTLS now",
    b"AUTH PLAIN",  # before TLS: 538
    b"",  # empty line
    b"NOOP " + b"x" * 600,  # command line too long
    b"NOOP",
    b"QUIT",
]


def test_every_reply_after_ehlo_carries_an_enhanced_status_code(make_relay):
    relay = make_relay()
    with Wire(relay.port) as wire:
        wire.greeting_and_ehlo()
        seen = []
        for command in SAMPLE_COMMANDS:
            reply = wire.command(command)
            seen.append((command, reply))
            for line in reply.lines:
                assert re.match(rb"^[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3} ", line), (command, reply)
                assert line[:1] == line[4:5], f"class of {line!r} does not match its code"
    codes = {command: reply.code for command, reply in seen}
    assert codes[b"XYZZY"] == 500
    assert codes[b"QUIT"] == 221
    assert codes[b"MAIL FROM:<again@sender.test>"] == 503
    assert codes[b"RCPT TO:<a@@dest.test>"] == 501
