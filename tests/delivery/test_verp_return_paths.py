"""VERP: a sender profile with a bounce domain makes each recipient's delivery its own SMTP
transaction, from `bounce+<queue id>=<local>=<domain>@<bounce domain>`, so a bounce names message
and recipient; each change is in the audit log (RELAY-VERP, old -> new). relay's own DSNs still
go to the mailer's MAIL FROM, and the null reverse path is never rewritten."""

from __future__ import annotations

import re
from typing import Any

from relay.ingest.auth import hash_password
from relay.rewrite.verp import RULE_ID, VerpAddress, parse_verp
from tests.delivery.helpers import NULL_REVERSE_PATH, receive_dsn
from tests.ingest.wire import unverified_tls
from tests.scenarios.compliance import audit_records, import_rows, records_for
from tests.support.relay_process import RelayProcess
from tests.support.sink import Sink

SENDER_DOMAIN = "shop-verp.test"
SENDER = f"news@{SENDER_DOMAIN}"
BOUNCE_DOMAIN = f"bounces.{SENDER_DOMAIN}"
DESTINATION = "dest-verp.test"
FIRST, SECOND = f"ann@{DESTINATION}", f"bob@{DESTINATION}"
USER, PASSWORD = "mailer", "s3cret"
MESSAGE = (
    f"From: News <{SENDER}>\r\n"
    f"To: <{FIRST}>\r\n"
    "Subject: Spring catalogue\r\n"
    f"Message-ID: <verp-1@{SENDER_DOMAIN}>\r\n"
    "\r\n"
    "Our spring catalogue is out.\r\n"
).encode()
QUEUED = re.compile(rb"2\.0\.0 Queued as ([0-9A-F]+)$")


def start_relay(
    make_relay, destination: Sink, senders_mx: Sink | None = None, **profile: Any
) -> RelayProcess:
    """relay delivering the destination's mail to `destination` (and the sender's, so its DSNs,
    to `senders_mx`), with the sender's profile (`profile` adds to its import row) imported."""
    routes = {DESTINATION: f"[127.0.0.1]:{destination.port}"}
    if senders_mx is not None:
        routes[SENDER_DOMAIN] = f"[127.0.0.1]:{senders_mx.port}"
    relay = make_relay(
        {
            "smtp": {"users": [{"name": USER, "password_hash": hash_password(PASSWORD)}]},
            "delivery": {"routes": routes},
        }
    )
    row = {
        "sender_id": "shop-verp",
        "legal_name": "Shop Ltd",
        "postal_address": "1 Road, Town",
        "contact": f"privacy@{SENDER_DOMAIN}",
        "verified_domains": [SENDER_DOMAIN],
        "users": [USER],
    }
    import_rows(relay, "senders", [row | profile])
    return relay


def send(relay: RelayProcess, sender: str, *, authenticate: bool = False) -> str:
    """MESSAGE from `sender` to FIRST and SECOND in one transaction; the queue id of the 250."""
    with relay.smtp() as client:
        client.ehlo("mailer.test")
        if authenticate:
            client.starttls(context=unverified_tls())
            client.ehlo("mailer.test")
            client.login(USER, PASSWORD)
        replies = [client.mail(sender), client.rcpt(FIRST), client.rcpt(SECOND)]
        assert all(code == 250 for code, _ in replies), replies
        code, text = client.data(MESSAGE)
    assert code == 250, text
    queued = QUEUED.match(text)
    assert queued, text
    return queued.group(1).decode()


def verp_records(relay: RelayProcess, recipient: str) -> list[dict[str, Any]]:
    return [record for record in records_for(relay, recipient) if record["rule_id"] == RULE_ID]


def test_each_recipient_leaves_in_its_own_transaction_from_its_verp_address(make_relay, sink):
    relay = start_relay(make_relay, sink, bounce_domain=BOUNCE_DOMAIN)
    queue_id = send(relay, SENDER)

    delivered = sink.wait_for(2)
    assert sorted(message.rcpt_tos for message in delivered) == [[FIRST], [SECOND]]
    assert len({message.peer for message in delivered}) == 1, "one connection, reused"
    for message in delivered:
        (recipient,) = message.rcpt_tos
        local = recipient.partition("@")[0]
        assert message.mail_from == f"bounce+{queue_id}={local}={DESTINATION}@{BOUNCE_DOMAIN}"
        assert parse_verp(message.mail_from) == VerpAddress(queue_id, recipient, None)
        assert message.data.endswith(MESSAGE)

        (accepted,) = [r for r in records_for(relay, recipient) if r["action"] == "accept"]
        (change,) = verp_records(relay, recipient)
        assert change["action"] == "fix"
        assert change["inputs"] == {"field": "MAIL FROM", "old": SENDER, "new": message.mail_from}
        assert change["queue_id"] == accepted["queue_id"] == queue_id
        assert change["sender_id"] == "shop-verp"
        relay.wait_for_log(f"{queue_id}: to=<{recipient}> relay=127.0.0.1 status=delivered")


def test_without_a_bounce_domain_the_mailers_return_path_is_kept(make_relay, sink):
    relay = start_relay(make_relay, sink)
    send(relay, SENDER)

    (message,) = sink.wait_for(1)
    assert message.rcpt_tos == [FIRST, SECOND]
    assert message.mail_from == SENDER
    assert not [record for record in audit_records(relay) if record["rule_id"] == RULE_ID]


def test_the_null_reverse_path_is_never_verped(make_relay, sink):
    relay = start_relay(make_relay, sink, bounce_domain=BOUNCE_DOMAIN)
    send(relay, "", authenticate=True)  # the profile is found by the AUTH name

    (message,) = sink.wait_for(1)
    assert message.mail_from in NULL_REVERSE_PATH
    assert message.rcpt_tos == [FIRST, SECOND]
    accepted = [record for record in audit_records(relay) if record["action"] == "accept"]
    assert [record["sender_id"] for record in accepted] == ["shop-verp", "shop-verp"]
    assert not verp_records(relay, FIRST)
    assert not verp_records(relay, SECOND)


def test_the_dsn_of_a_verped_message_goes_to_the_mailers_address(make_relay, make_sink):
    destination, senders_mx = make_sink(), make_sink()
    destination.rcpt_replies[SECOND].append("550 5.1.1 no such user")
    relay = start_relay(make_relay, destination, senders_mx, bounce_domain=BOUNCE_DOMAIN)
    queue_id = send(relay, SENDER)

    (delivered,) = destination.wait_for(1)
    assert delivered.rcpt_tos == [FIRST]
    assert parse_verp(delivered.mail_from) == VerpAddress(queue_id, FIRST, None)

    _, dsn = receive_dsn(senders_mx, SENDER)
    assert SENDER in dsn.message["To"]
    assert [str(block["Final-Recipient"]) for block in dsn.per_recipient] == [f"rfc822; {SECOND}"]
    assert dsn.per_message["X-Relay-Queue-ID"] == queue_id
    relay.wait_for_log(f"{queue_id}: to=<{SECOND}> relay=127.0.0.1 status=bounced dsn=5.1.1")
