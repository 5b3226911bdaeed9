"""Cadence through the SMTP listener, on the shipped policies with cadence.toml's windows
shortened by configuration: the message over the frequency cap is deferred with the rule id and
the time the window frees (at RCPT on a commercial stream, at end of data on a mixed one), a
transactional one still passes, and a campaign sent twice to one recipient is refused the second
time; every decision is in the audit log."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from relay.policy.files import policy_paths
from tests.policy.builders import message
from tests.scenarios.compliance import (
    US_RECIPIENT,
    add_shop_sender,
    policy_config,
    records_for,
    reply_status,
    submit,
)

CAP = "CADENCE-FREQUENCY-CAP"


def cadence_policies(directory: Path, windows: list[dict[str, Any]]) -> list[Path]:
    """The shipped policy files, with a copy of cadence.toml whose cap has `windows`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for shipped in policy_paths(None):
        if shipped.name == "cadence.toml":
            text = shipped.read_text(encoding="utf-8")
            assert tomllib.loads(text)["rules"][CAP]["params"]["windows"]
            start = text.index("windows = ")
            end = text.index("\n", start)
            listed = ", ".join(
                f'{{ count = {w["count"]}, period = "{w["period"]}" }}' for w in windows
            )
            shipped = directory / shipped.name
            shipped.write_text(f"{text[:start]}windows = [{listed}]{text[end:]}", encoding="utf-8")
        paths.append(shipped)
    return paths


def offer(number: int, **headers: str) -> bytes:
    """A commercial message of its own campaign and content."""
    return message({"X-Relay-Campaign": f"offer-{number}", "Subject": f"Offer {number}", **headers})


def test_the_message_over_the_cap_is_deferred_at_rcpt_with_the_rule_and_when_it_frees(
    make_relay, shop, sink, tmp_path
):
    files = cadence_policies(tmp_path / "policies", [{"count": 1, "period": "1h"}])
    relay = make_relay(policy_config(sink, shop, policy_files=files))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], offer(1))
    assert data is not None
    assert data[0] == 250, data

    replies, data = submit(relay, [US_RECIPIENT, "bob@example.us"], offer(2))
    code, text = replies[US_RECIPIENT]
    assert (code, reply_status(text)) == (452, "4.2.2"), text
    assert CAP in text
    assert "the window frees at" in text
    assert replies["bob@example.us"][0] == 250  # first message to bob: under the cap
    assert data is not None
    assert data[0] == 250, data
    assert sorted(r for m in sink.wait_for(2) for r in m.rcpt_tos) == [
        US_RECIPIENT,
        "bob@example.us",
    ]
    (deferral,) = [r for r in records_for(relay, US_RECIPIENT) if r.get("rule_id") == CAP]
    assert deferral["action"] == "defer"
    assert deferral["reply"].startswith("452 4.2.2")
    assert deferral["inputs"]["sent"] == 1
    assert deferral["inputs"]["limit"] == "1 per 1h"


def test_on_a_mixed_stream_the_cap_decides_at_end_of_data_and_transactional_mail_passes(
    make_relay, shop, sink, tmp_path
):
    files = cadence_policies(tmp_path / "policies", [{"count": 1, "period": "1h"}])
    relay = make_relay(policy_config(sink, shop, policy_files=files))
    add_shop_sender(relay, message_class="mixed")
    _, data = submit(relay, [US_RECIPIENT], offer(1))
    assert data is not None
    assert data[0] == 250, data

    replies, data = submit(relay, [US_RECIPIENT], offer(2))
    assert replies[US_RECIPIENT][0] == 250  # the class is only known with the message
    assert data is not None
    assert (data[0], reply_status(data[1])) == (452, "4.2.2"), data
    assert CAP in data[1]

    receipt = message(
        {"X-Relay-Message-Class": "transactional", "Subject": "Your order #1234"},
        text="Thank you for your order #1234. It ships tomorrow.\n",
        html=None,
    )
    _, data = submit(relay, [US_RECIPIENT], receipt)
    assert data is not None
    assert data[0] == 250, data
    delivered = sink.wait_for(2)
    assert [m.rcpt_tos for m in delivered] == [[US_RECIPIENT], [US_RECIPIENT]]
    records = records_for(relay, US_RECIPIENT)
    assert [r["action"] for r in records if r.get("rule_id") == CAP] == ["defer"]
    accepted = [r["inputs"]["message_class"] for r in records if r["action"] == "accept"]
    assert accepted == ["mixed", "transactional"]


def test_a_campaign_sent_twice_to_one_recipient_is_refused_the_second_time(
    make_relay, shop, sink, tmp_path
):
    files = cadence_policies(tmp_path / "policies", [{"count": 10, "period": "1h"}])
    relay = make_relay(policy_config(sink, shop, policy_files=files))
    add_shop_sender(relay)
    _, data = submit(relay, [US_RECIPIENT], message({"X-Relay-Campaign": "summer"}))
    assert data is not None
    assert data[0] == 250, data

    again = message({"X-Relay-Campaign": "summer", "Subject": "Summer sale: last days"})
    _, data = submit(relay, [US_RECIPIENT], again)
    assert data is not None
    assert (data[0], reply_status(data[1])) == (550, "5.7.1"), data
    assert "CADENCE-DUPLICATE-CAMPAIGN" in data[1]
    assert len(sink.wait_for(1)) == 1
    (refusal,) = [
        r
        for r in records_for(relay, US_RECIPIENT)
        if r.get("rule_id") == "CADENCE-DUPLICATE-CAMPAIGN"
    ]
    assert refusal["action"] == "reject"
    assert refusal["inputs"]["list_id"] == "summer"
    assert refusal["inputs"]["sent"] == 1
    assert refusal["citation"].startswith("M3AAWG")
