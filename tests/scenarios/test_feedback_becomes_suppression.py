"""What comes back becomes a suppression that the next RCPT honours. The shop sends through relay
with VERP (bounce domain bounces.shop.example): the destination refuses ann (550 5.1.1: relay
bounces her with a DSN to the shop and suppresses her) and accepts the others. Later a bounce
for bob arrives at relay's feedback listener at his VERP return path, an ARF complaint about
carl's copy arrives at the complaint address, and dan mails the unsubscribe mailbox. Each is
refused at the shop's next RCPT with 550 5.7.1 under the suppression rules, and the audit log
holds the record that caused each entry. Soft bounces suppress only at the third within the
window."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pytest

from relay.rewrite.unsubscribe import UnsubscribeTokens
from relay.rewrite.verp import verp_address
from relay.stores.hashing import AddressHasher
from tests.delivery.helpers import NULL_REVERSE_PATH
from tests.feedback.reports import arf, bounce, original, unsubscribe_request
from tests.policy.builders import message
from tests.scenarios.compliance import (
    add_shop_sender,
    audit_records,
    policy_config,
    records_for,
    relay_cli,
    reply_status,
    submit,
)
from tests.support.dns_server import txt
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess, merge

# Not bounces.shop.example: test_sender_domain_dns_is_checked needs that without SPF.
BOUNCE_DOMAIN = "returns.shop.example"
ANN, BOB, CARL, DAN, EVE = (f"{name}@example.us" for name in ("ann", "bob", "carl", "dan", "eve"))
COMPLAINTS = "fbl@relay.test"
QUEUED = re.compile(r"Queued as ([0-9A-F]+)")


@pytest.fixture
def relay(make_relay, shop, sink, dns_server) -> RelayProcess:
    dns_server.add(txt(BOUNCE_DOMAIN, "v=spf1 ip4:127.0.0.1 -all"))
    config = merge(
        policy_config(sink, shop),
        {
            "feedback": {"complaint_addresses": [COMPLAINTS]},
            "rewrite": {"unsubscribe_mailto_domain": "relay.test"},
        },
    )
    relay = make_relay(config)
    add_shop_sender(relay, bounce_domain=BOUNCE_DOMAIN)
    return relay


def feed(relay: RelayProcess, recipient: str, content: bytes) -> str:
    """Send `content` to the feedback listener from the null reverse path; its inbox name."""
    with relay.feedback_smtp() as client:
        client.ehlo("mx.example.us")
        client.mail("<>")
        code, text = client.rcpt(recipient)
        assert code == 250, text
        code, text = client.data(content)
    assert code == 250, text
    queued = QUEUED.search(text.decode())
    assert queued, text
    return queued.group(1)


def keys(relay: RelayProcess) -> tuple[UnsubscribeTokens, AddressHasher]:
    """relay's unsubscribe token and address keys, to make tokens as its rewrite stage does."""
    directory = relay.directory / "var" / "keys"
    return (
        UnsubscribeTokens((directory / "unsubscribe-token.key").read_bytes()),
        AddressHasher((directory / "address-hmac.key").read_bytes()),
    )


def suppression_record(relay: RelayProcess, recipient: str) -> dict[str, Any]:
    """The audit record of the suppression of `recipient`, once relay has written it, and
    named by the suppression entry it caused."""
    address_hash = keys(relay)[1].hash(recipient)
    found = poll(
        lambda: next(
            (
                r
                for r in audit_records(relay)
                if r["action"] == "suppress" and r["recipient_hash"] == address_hash
            ),
            None,
        ),
        timeout=20,
    )
    assert found is not None, relay.log
    entry = poll(lambda: suppression_entry(relay, recipient), timeout=20)
    assert entry is not None, relay.log
    assert json.loads(entry)["audit_ref"] == found["hash"]
    return found


def assert_refused_at_rcpt(relay: RelayProcess, recipient: str, reason: str) -> None:
    replies, _ = submit(relay, [recipient], message({"To": recipient}))
    code, text = replies[recipient]
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    refusals = [r for r in records_for(relay, recipient) if r["action"] == "reject"]
    assert sorted(r["rule_id"] for r in refusals) == ["MBP-UNSUB-48H", "US-OPTOUT-HONOR-10BD"]
    assert all(r["inputs"]["suppression_reason"] == reason for r in refusals)


def suppression_entry(relay: RelayProcess, recipient: str) -> str | None:
    result = relay_cli(relay, "suppressions", "check", recipient, "--sender", "shop")
    assert result.returncode in (0, 1), result.stderr
    return result.stdout if result.returncode == 0 else None


def test_bounces_complaints_and_unsubscribes_stop_the_next_rcpt(relay, sink):
    sink.rcpt_replies[ANN].append("550 5.1.1 <ann@example.us>: no such user")
    replies, data = submit(relay, [ANN, BOB, CARL, DAN], message())
    assert all(code == 250 for code, _ in replies.values()), replies
    assert data is not None
    assert data[0] == 250, data
    delivered = sink.wait_for(4)  # bob, carl, dan, and the DSN about ann to the shop
    (dsn,) = [m for m in delivered if m.mail_from in NULL_REVERSE_PATH]
    assert dsn.rcpt_tos == ["news@shop.example"]
    assert b"5.1.1" in dsn.data
    return_paths = {m.rcpt_tos[0]: m.mail_from for m in delivered if m is not dsn}
    assert return_paths[BOB].endswith(f"@{BOUNCE_DOMAIN}")

    # relay's own delivery: 550 5.1.1 suppresses ann.
    record = suppression_record(relay, ANN)
    assert (record["stage"], record["inputs"]["status"]) == ("queue", "5.1.1")
    assert_refused_at_rcpt(relay, ANN, "hard_bounce")

    # A bounce arriving later at bob's VERP return path.
    name = feed(
        relay,
        return_paths[BOB],
        bounce(BOB, "5.1.1", "550 5.1.1 <bob@example.us>: user unknown", original(BOB)),
    )
    record = suppression_record(relay, BOB)
    assert record["inputs"]["file"] == name
    assert (record["inputs"]["status"], record["message_id"]) == ("5.1.1", "m1@shop.example")
    assert_refused_at_rcpt(relay, BOB, "hard_bounce")

    # An ARF report about carl's copy, whose VERP Return-Path names the sender and recipient
    # even though the report hides the recipient.
    report = arf(original(None, return_path=return_paths[CARL]), original_rcpt_to=None)
    name = feed(relay, COMPLAINTS, report)
    record = suppression_record(relay, CARL)
    assert record["inputs"]["file"] == name
    assert record["inputs"]["feedback_type"] == "abuse"
    assert_refused_at_rcpt(relay, CARL, "complaint_arf")

    # dan writes to the unsubscribe mailbox with the token of his copy's mailto link.
    tokens, hasher = keys(relay)
    token = tokens.issue(
        sender_id="shop", list_id=None, address_hash=hasher.hash(DAN), issued=date.today()
    )
    feed(relay, "unsubscribe@relay.test", unsubscribe_request(token))
    record = suppression_record(relay, DAN)
    assert (record["stage"], record["inputs"]["scope"]) == ("unsubscribe", "sender")
    assert_refused_at_rcpt(relay, DAN, "unsubscribe_mailto")

    assert not list((relay.directory / "var" / "feedback" / "unparsed").iterdir())
    assert not list((relay.directory / "var" / "feedback" / "new").iterdir())


def test_third_soft_bounce_within_the_window_suppresses(relay):
    address = verp_address(BOUNCE_DOMAIN, "0ABC12", EVE)
    full = bounce(EVE, "4.2.2", "452 4.2.2 mailbox full", original(EVE))
    for count in (1, 2):
        name = feed(relay, address, full.replace(b"dsn-1@", f"dsn-{count}@".encode()))
        relay.wait_for_log(f"feedback {name}: soft bounce {count} of 3")
        assert suppression_entry(relay, EVE) is None
    feed(relay, address, full.replace(b"dsn-1@", b"dsn-3@"))
    record = suppression_record(relay, EVE)
    assert record["inputs"]["soft_bounces"] == 3
    assert '"reason": "soft_bounces"' in (suppression_entry(relay, EVE) or "")
    assert_refused_at_rcpt(relay, EVE, "soft_bounces")
    assert len([r for r in audit_records(relay) if r["action"] == "suppress"]) == 1
