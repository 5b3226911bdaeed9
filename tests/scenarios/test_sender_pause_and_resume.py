"""The operator pauses the shop (`relay senders pause shop --reason ...`): its next commercial
recipient gets 451 4.7.1 naming MBP-COMPLAINT-RATE and the reason, its transactional mail still
goes; `relay senders resume shop` and the commercial mail is accepted again; both are in the
audit log (stage "sender"). Then the shop's complaint figures pass 0.3 % of 1000 delivered and
relay pauses it by itself, recording that pause the same way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from relay.stores.stats import Kind, SqliteStats, Tally
from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_consent,
    add_shop_sender,
    audit_records,
    policy_config,
    relay_cli,
    reply_status,
    submit,
)
from tests.support.relay_process import RelayProcess

REASON = "spam-trap hits reported by Spamhaus"
TRANSACTIONAL = {"X-Relay-Message-Class": "transactional", "Subject": "Your order #1234"}


def sender_records(relay: RelayProcess) -> list[tuple[str, str | None, str | None]]:
    return [
        (record["action"], record["rule_id"], record["detail"])
        for record in audit_records(relay)
        if record["stage"] == "sender"
    ]


def test_operator_pause_defers_commercial_mail_until_resumed(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, US_RECIPIENT, "US", "c-ann")

    paused = relay_cli(relay, "senders", "pause", "shop", "--reason", REASON)
    assert paused.returncode == 0, paused.stderr
    replies, data = submit(relay, [US_RECIPIENT], message())
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (451, "4.7.1"), text
    assert "MBP-COMPLAINT-RATE" in text
    assert REASON in text
    assert data is None

    # A mixed stream: transactional mail goes, commercial mail waits at end of data.
    add_shop_sender(relay, message_class="mixed")
    _, data = submit(relay, [US_RECIPIENT], message(TRANSACTIONAL))
    assert data is not None
    assert data[0] == 250, data
    _, data = submit(relay, [US_RECIPIENT], message({"X-Relay-Message-Class": "commercial"}))
    assert data is not None
    assert (data[0], reply_status(data[1])) == (451, "4.7.1"), data
    add_shop_sender(relay)

    resumed = relay_cli(relay, "senders", "resume", "shop")
    assert resumed.returncode == 0, resumed.stderr
    replies, data = submit(relay, [US_RECIPIENT], message())
    assert replies[US_RECIPIENT][0] == 250, replies
    assert data is not None
    assert data[0] == 250, data
    assert len(sink.wait_for(2)) == 2  # the receipt and the resumed commercial message
    assert sender_records(relay) == [
        ("pause", None, REASON),
        ("resume", None, "resumed by the operator"),
    ]


async def add_figures(relay: RelayProcess, complaints: int, delivered: int) -> None:
    async with SqliteStats(relay.directory / "var" / "stores.sqlite") as stats:
        await stats.add(
            datetime.now(UTC),
            [
                Tally("shop", "spring", Kind.DELIVERED, delivered),
                Tally("shop", "spring", Kind.COMPLAINT, complaints),
            ],
        )


def test_complaint_rate_pauses_the_sender_by_itself(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    add_consent(relay, US_RECIPIENT, "US", "c-ann")
    asyncio.run(add_figures(relay, 4, 1000))  # 0.4 %

    replies, _ = submit(relay, [US_RECIPIENT], message())
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (451, "4.7.1"), text
    assert "MBP-COMPLAINT-RATE" in text
    assert "0.40%" in text
    (record,) = sender_records(relay)  # written before the reply
    action, rule_id, detail = record
    assert (action, rule_id) == ("pause", "MBP-COMPLAINT-RATE")
    assert detail is not None
    assert "4 complaints, 1000 delivered" in detail
    state = relay_cli(relay, "senders", "pause", "shop")
    assert state.returncode == 0
    assert "already paused" in state.stdout
