"""Mail the policy stage accepts is DKIM-signed (RSA and Ed25519) for its From domain before it
is spooled; after delivery to the destination, the bytes the sink received pass the
independent verifiers, and the audit record names the signatures. A header added after signing
breaks them. Mail for a From domain relay holds no key for is refused (MBP-DKIM-ALIGNED): it
would fail DMARC at every mailbox provider."""

from __future__ import annotations

import pytest

from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)
from tests.signing.verifiers import mailauth, opendkim, results, write_key_records


def test_signed_by_relay_and_verified_at_the_destination(make_relay, shop, sink, tmp_path):
    relay = make_relay(policy_config(sink, shop, ed25519=True))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message())
    assert data is not None
    assert data[0] == 250, data
    (delivered,) = sink.wait_for(1)
    assert delivered.data.startswith(b"Received: from ")
    received = tmp_path / "delivered.eml"
    received.write_bytes(delivered.data)
    records = {key.record_name: key.record_value for key in (shop.rsa, shop.ed25519)}
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


@pytest.mark.usefixtures("shop")  # shop.example's SPF and DMARC, published in the test DNS
def test_mail_from_a_domain_without_a_key_is_refused(make_relay, sink):
    relay = make_relay(policy_config(sink, None))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message())
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    assert "DKIM key" in text
    (refusing,) = [r for r in records_for(relay, US_RECIPIENT) if r.get("reply")]
    assert refusing["rule_id"] == "MBP-DKIM-ALIGNED"
    assert refusing["action"] == "reject"
    assert refusing["reply"] == f"{code} {text}"
    assert "relay cannot sign for shop.example" in refusing["detail"]
    assert relay.queue_files() == []
    assert not sink.messages
