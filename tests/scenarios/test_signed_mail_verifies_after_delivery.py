"""Mail the policy stage accepts is DKIM-signed (RSA and Ed25519) for its From domain before it
is spooled; after delivery to the destination, the bytes the sink received pass the
independent verifiers, and the audit record names the signatures. A header added after signing
breaks them."""

from __future__ import annotations

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    policy_config,
    records_for,
    submit,
)
from tests.signing.conftest import keygen
from tests.signing.verifiers import mailauth, opendkim, results, write_key_records


def test_signed_by_relay_and_verified_at_the_destination(make_relay, sink, tmp_path):
    rsa = keygen(tmp_path / "keys", "shop.example", "s2026")
    ed25519 = keygen(tmp_path / "keys", "shop.example", "e2026", "--algorithm", "ed25519-sha256")
    keys = [
        {"domain": "shop.example", "selector": "s2026", "private_key": str(rsa.path)},
        {
            "domain": "shop.example",
            "selector": "e2026",
            "private_key": str(ed25519.path),
            "algorithm": "ed25519-sha256",
        },
    ]
    relay = make_relay({**policy_config(sink), "dkim": {"keys": keys}})
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message())
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert delivered.data.startswith(b"Received: from ")
    received = tmp_path / "delivered.eml"
    received.write_bytes(delivered.data)
    records = {rsa.record_name: rsa.record_value, ed25519.record_name: ed25519.record_value}
    keys_txt, dns_json = write_key_records(tmp_path / "dns", records)
    assert results(opendkim(received, keys_txt)) == ["pass", "pass"]
    assert results(mailauth(received, dns_json)) == ["pass", "pass"]
    (accepted,) = [r for r in records_for(relay, US_RECIPIENT) if r["action"] == "accept"]
    assert accepted["inputs"]["dkim"] == [
        "d=shop.example s=s2026 a=rsa-sha256",
        "d=shop.example s=e2026 a=ed25519-sha256",
    ]

    tampered = tmp_path / "tampered.eml"
    tampered.write_bytes(b"Subject: you won a prize\r\n" + delivered.data)
    assert "pass" not in results(opendkim(tampered, keys_txt))
    assert "pass" not in results(mailauth(tampered, dns_json))


def test_mail_from_a_domain_without_a_key_is_delivered_unsigned(make_relay, sink):
    relay = make_relay(policy_config(sink))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message())
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert b"DKIM-Signature:" not in delivered.data
    (accepted,) = [r for r in records_for(relay, US_RECIPIENT) if r["action"] == "accept"]
    assert accepted["inputs"]["dkim"] == "no DKIM key for shop.example"
