"""Relay refuses to send for a domain whose DNS would make every message fail at the mailbox
providers (MBP-SPF-PASS at RCPT, MBP-DKIM-ALIGNED and MBP-DMARC-RECORD at end of data), reading
the real test DNS; each refusal names the rule and keeps the DNS answers it rested on. When DNS
cannot answer, the mailer is told to retry (451 4.4.3), never refused for good or let through."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)
from tests.signing.conftest import keygen
from tests.support.dns_server import txt
from tests.support.network import free_port

NO_DMARC = "plain-shop.example"


def refusal(relay, rule_id):
    (record,) = [r for r in records_for(relay, US_RECIPIENT) if r.get("reply")]
    assert record["rule_id"] == rule_id
    return record


def test_egress_address_missing_from_spf_is_refused_at_rcpt(make_relay, shop, sink):
    config = policy_config(sink, shop)
    config["delivery"]["egress_addresses"] = ["192.0.2.7"]  # not in shop.example's SPF
    relay = make_relay(config)
    add_shop_sender(relay)
    replies, data = submit(relay, [US_RECIPIENT], message())
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    assert data is None
    record = refusal(relay, "MBP-SPF-PASS")
    assert record["stage"] == "rcpt"
    assert "192.0.2.7 fail" in record["detail"]
    assert record["inputs"]["status"] == "fail"
    assert {"name": "shop.example", "type": "TXT"}.items() <= record["inputs"]["answers"][0].items()
    assert "v=spf1 ip4:127.0.0.1 -all" in record["inputs"]["answers"][0]["records"]
    assert not sink.messages


def test_key_whose_record_is_not_published_is_refused_at_data(make_relay, shop, sink, tmp_path):
    unpublished = keygen(tmp_path / "keys", "shop.example", "s2027")
    config = policy_config(sink, shop)
    config["dkim"]["keys"].append(
        unpublished.key_entry()
    )  # listed last: the active key, whose record nobody published yet
    relay = make_relay(config)
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message())
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    record = refusal(relay, "MBP-DKIM-ALIGNED")
    assert record["inputs"]["check"] == "dkim:s2027"
    assert record["inputs"]["status"] == "missing"
    assert relay.queue_files() == []


def test_domain_without_dmarc_may_send_transactional_mail_only(
    make_relay, shop, sink, dns_server, tmp_path
):
    key = keygen(tmp_path / "keys", NO_DMARC, "s1")
    dns_server.add(
        txt(NO_DMARC, "v=spf1 ip4:127.0.0.1 -all"), txt(key.record_name, key.record_value)
    )
    config = policy_config(sink, shop)
    config["dkim"]["keys"].append(key.key_entry())
    relay = make_relay(config)
    add_shop_sender(relay, verified_domains=[NO_DMARC])
    sender = f"news@{NO_DMARC}"
    bulk = message({"From": f"Shop <{sender}>"})
    _, data = submit(relay, [US_RECIPIENT], bulk, sender)
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text

    receipt = message(
        {
            "From": f"Shop <{sender}>",
            "X-Relay-Message-Class": "transactional",
            "Subject": "Your order #1234",
            "List-Unsubscribe": None,
            "List-Unsubscribe-Post": None,
        },
        text="Thank you for your order #1234.\n",
        html=None,
    )
    _, data = submit(relay, [US_RECIPIENT], receipt, sender)
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert b"d=plain-shop.example" in delivered.data
    warnings = [
        r
        for r in records_for(relay, US_RECIPIENT)
        if r["rule_id"] == "MBP-DMARC-RECORD" and r["action"] == "warn"
    ]
    assert len(warnings) == 1


def test_dns_temporary_failure_defers_with_451_4_4_3(make_relay, shop, sink):
    config = policy_config(sink, shop)
    config["dns"] = {"nameservers": [f"127.0.0.1:{free_port()}"], "timeout": 1}  # nobody there
    relay = make_relay(config)
    add_shop_sender(relay)
    replies, _ = submit(relay, [US_RECIPIENT], message())
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (451, "4.4.3"), text
    assert "MBP-SPF-PASS" in text
    record = refusal(relay, "MBP-SPF-PASS")
    assert record["action"] == "defer"
    assert record["inputs"]["status"] == "temperror"
    assert not sink.messages


def test_spf_is_checked_for_the_verp_bounce_domain(make_relay, shop, sink):
    """With a bounce domain, receivers check SPF of the VERP return path's domain, not of the
    mailer's MAIL FROM: it is that domain's record relay asks for."""
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay, bounce_domain="bounces.shop.example")  # publishes no SPF
    replies, _ = submit(relay, [US_RECIPIENT], message())
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    record = refusal(relay, "MBP-SPF-PASS")
    assert record["inputs"]["status"] == "missing"
    assert "bounces.shop.example publishes no SPF record" in record["detail"]
