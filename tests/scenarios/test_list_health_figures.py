"""The shop sends its spring campaign through relay (VERP under returns.shop.example) to five
recipients: the destination refuses ann for good (550 5.1.1) and bob for now (450), and takes
carl, dan and eve. Later eve's mailbox provider bounces her copy to her VERP return path, carl
complains about his (ARF, the VERP Return-Path naming his copy), and dan unsubscribes from the
campaign with the one-click POST. The shop's next mailing of the campaign to ann and dan is
refused: ann at RCPT (suppressed after her bounce), dan at end of data (he left the list).
`relay stats` reports exactly what happened, per campaign and sender, and flags the complaint
rate past the mailbox providers' pause threshold."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

import httpx
import pytest

from tests.feedback.reports import arf, bounce, original
from tests.policy.builders import message
from tests.scenarios.compliance import (
    add_shop_sender,
    policy_config,
    records_for,
    relay_cli,
    submit,
)
from tests.scenarios.test_feedback_becomes_suppression import (
    ANN,
    BOB,
    BOUNCE_DOMAIN,
    CARL,
    COMPLAINTS,
    DAN,
    EVE,
    feed,
    keys,
    suppression_record,
)
from tests.support.dns_server import txt
from tests.support.polling import poll
from tests.support.relay_process import RelayProcess, merge

CAMPAIGN = "spring-sale"


@pytest.fixture
def relay(make_relay, shop, sink, dns_server) -> RelayProcess:
    dns_server.add(txt(BOUNCE_DOMAIN, "v=spf1 ip4:127.0.0.1 -all"))
    config = merge(
        policy_config(sink, shop),
        {
            "delivery": {"retry_schedule": ["1h"]},  # bob's one deferral stays the only one
            "feedback": {"complaint_addresses": [COMPLAINTS]},
            "rewrite": {"unsubscribe_mailto_domain": "relay.test"},
        },
    )
    relay = make_relay(config)
    add_shop_sender(relay, bounce_domain=BOUNCE_DOMAIN)
    return relay


def stats(relay: RelayProcess, *args: str) -> dict[Any, dict[str, Any]]:
    """`relay stats --json` with `args`: each row's windows by (sender, campaign)."""
    result = relay_cli(relay, "stats", "--json", *args)
    assert result.returncode == 0, result.stderr
    return {
        (row["sender"], row["campaign"]): row["windows"]
        for row in json.loads(result.stdout)["rows"]
    }


NOTHING = {
    "accepted": 0,
    "delivered": 0,
    "hard_bounces": 0,
    "soft_bounces": 0,
    "complaints": 0,
    "unsubscribes": 0,
    "refusals": {},
    "hard_bounce_rate": None,
    "soft_bounce_rate": None,
    "complaint_rate": None,
    "unsubscribe_rate": None,
    "complaint_flag": None,
}


def refusing_rules(relay: RelayProcess, recipient: str) -> list[str]:
    return [
        record["rule_id"]
        for record in records_for(relay, recipient)
        if record["reply"] is not None and record["rule_id"] is not None
    ]


def test_stats_report_the_campaign_as_it_went(relay, sink):
    sink.rcpt_replies[ANN].append("550 5.1.1 <ann@example.us>: no such user")
    sink.rcpt_replies[BOB].append("450 4.2.0 <bob@example.us>: try again later")
    campaign_mail = message({"X-Relay-Campaign": CAMPAIGN})
    replies, data = submit(relay, [ANN, BOB, CARL, DAN, EVE], campaign_mail)
    assert all(code == 250 for code, _ in replies.values()), replies
    assert data is not None
    assert data[0] == 250, data
    delivered = sink.wait_for(4)  # carl, dan, eve, and the DSN about ann to the shop
    return_paths = {m.rcpt_tos[0]: m.mail_from for m in delivered}
    relay.wait_for_log(f"to=<{BOB}> relay=")
    suppression_record(relay, ANN)

    feed(
        relay,
        return_paths[EVE],
        bounce(EVE, "5.1.1", "550 5.1.1 <eve@example.us>: user unknown", original(EVE)),
    )
    suppression_record(relay, EVE)
    feed(
        relay,
        COMPLAINTS,
        arf(original(None, return_path=return_paths[CARL]), original_rcpt_to=None),
    )
    suppression_record(relay, CARL)
    tokens, hasher = keys(relay)
    token = tokens.issue(
        sender_id="shop", list_id=CAMPAIGN, address_hash=hasher.hash(DAN), issued=date.today()
    )
    for _ in range(2):  # a second click changes nothing
        answer = httpx.post(
            f"{relay.http_url}/u/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=10
        )
        assert answer.status_code == 200, answer.text

    replies, data = submit(relay, [ANN, DAN], campaign_mail)
    assert replies[ANN][0] == 550, replies
    assert data is not None
    assert data[0] == 550, data
    # The rule whose reply refused each of them (several rules may find against a recipient).
    (dan_refused,) = refusing_rules(relay, DAN)
    (ann_refused,) = refusing_rules(relay, ANN)

    expected = {
        "accepted": 5,
        "delivered": 3,
        "hard_bounces": 2,  # ann at delivery, eve's bounce
        "soft_bounces": 1,  # bob
        "complaints": 1,  # carl
        "unsubscribes": 1,  # dan, once
        "refusals": {dan_refused: 1},  # at end of data
        "hard_bounce_rate": 2 / 5,
        "soft_bounce_rate": 1 / 5,
        "complaint_rate": 1 / 3,
        "unsubscribe_rate": 1 / 3,
        "complaint_flag": "pause",
    }
    every_window = {("shop", CAMPAIGN): dict.fromkeys(("1d", "7d", "30d"), expected)}
    poll(lambda: stats(relay, "--campaign", CAMPAIGN) == every_window or None, timeout=20)
    assert stats(relay, "--campaign", CAMPAIGN) == every_window

    by_sender = stats(relay, "--sender", "shop")
    assert list(by_sender) == [("shop", None), ("shop", ""), ("shop", CAMPAIGN)]
    # At RCPT the campaign is not known yet.
    assert by_sender[("shop", "")]["1d"] == NOTHING | {"refusals": {ann_refused: 1}}
    every_campaign = Counter({dan_refused: 1}) + Counter({ann_refused: 1})
    assert by_sender[("shop", None)]["30d"] == expected | {"refusals": dict(every_campaign)}
