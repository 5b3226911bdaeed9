"""The same EU message as the one relay fixes, but relay holds no DKIM key for the From domain:
a rewrite would break the mailer's signature and relay cannot sign it again (COMPLIANCE §11
point 10), so the message is refused with the fix rule's reply and nothing is delivered."""

from __future__ import annotations

from tests.scenarios.compliance import (
    EU_RECIPIENT,
    add_consent,
    add_shop_sender,
    records_for,
    reply_status,
    submit,
)
from tests.scenarios.rewriting import rewriting_config, without_unsubscribe


def test_message_needing_a_fix_without_an_aligned_key_is_refused(make_relay, sink):
    relay = make_relay(rewriting_config(sink, None))
    add_shop_sender(relay)
    add_consent(relay, EU_RECIPIENT, "EU", record_id="c-eu")

    _, data = submit(relay, [EU_RECIPIENT], without_unsubscribe())
    assert data is not None
    code, text = data
    assert (code, reply_status(text)) == (550, "5.7.1"), text
    records = records_for(relay, EU_RECIPIENT)
    (refusing,) = [r for r in records if r.get("reply")]
    assert refusing["action"] == "fix"
    assert refusing["reply"] == f"{code} {text}"
    assert not any("field" in r["inputs"] for r in records)
    assert not any(r["action"] == "accept" for r in records)
    assert relay.queue_files() == []
    assert not sink.messages
