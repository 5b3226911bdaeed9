"""Commercial mail accepted outside its stream's send window waits in the spool and reaches each
recipient when the window opens in that recipient's own time zone; transactional mail goes at
once; `relay queue held` shows what waits; a restart keeps the hold.

The windows are the shop's real policy data, shortened: each opens a few seconds from now in the
local time of one recipient (New York and Tokyo, half a day apart, so neither is inside the
other's window)."""

from __future__ import annotations

import json
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import tomli_w

from relay.policy.files import policy_paths
from relay.policy.windows import WEEKDAYS
from tests.delivery.helpers import holds_for
from tests.policy.builders import message
from tests.scenarios.compliance import (
    add_consent,
    add_shop_sender,
    audit_records,
    policy_config,
    relay_cli,
    submit,
)

NEW_YORK = ("ann@example.us", "America/New_York")
TOKYO = ("ken@example.us", "Asia/Tokyo")
CUSTOMER = "tom@example.us"
SPREAD = 2.0


def window_opening_in(seconds: float, zone: str) -> dict[str, Any]:
    """A ten-minute window that opens `seconds` from now in `zone`'s local time."""
    local = (datetime.now(UTC) + timedelta(seconds=seconds)).astimezone(ZoneInfo(zone))
    return {
        "days": [WEEKDAYS[local.weekday()]],
        "start": local.time().replace(microsecond=0).isoformat(),
        "end": (local + timedelta(minutes=10)).time().replace(microsecond=0).isoformat(),
    }


def policies_with_windows(directory: Path, windows: list[dict[str, Any]]) -> list[str]:
    """The shipped policies, the shop's commercial mail limited to `windows`."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[str] = []
    for shipped in policy_paths(None):
        data = tomllib.loads(shipped.read_text(encoding="utf-8"))
        if shipped.name == "send-windows.toml":
            params = data["rules"]["CADENCE-SEND-WINDOW"]["params"]
            params["streams"] = [{"sender": "shop", "windows": windows}]
            params["spread"] = f"{SPREAD:.0f}s"
        path = directory / shipped.name
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
        paths.append(str(path))
    return paths


def held_report(relay: Any) -> dict[str, Any]:
    result = relay_cli(relay, "queue", "held", "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def nothing_more_until(sink: Any, count: int, moment: float) -> bool:
    """The sink holds exactly `count` messages all the way until `moment` (watched, not slept)."""
    return holds_for(lambda: len(sink.messages) == count, max(0.0, moment - time.time()))


def test_held_mail_is_released_at_each_recipients_local_opening(make_relay, shop, sink):
    relay = make_relay(policy_config(sink, shop))
    add_shop_sender(relay)
    for address, zone in (NEW_YORK, TOKYO):
        add_consent(relay, address, "US", f"consent-{address}", time_zone=zone)
    relay.stop()
    windows = [window_opening_in(14, NEW_YORK[1]), window_opening_in(22, TOKYO[1])]
    relay.config["policy"]["files"] = policies_with_windows(relay.directory / "policies", windows)
    relay.start()

    _, data = submit(relay, [NEW_YORK[0], TOKYO[0]], message())
    assert data is not None
    assert data[0] == 250, data
    _, data = submit(relay, [CUSTOMER], message({"X-Relay-Message-Class": "transactional"}))
    assert data is not None
    assert data[0] == 250, data
    (receipt,) = sink.wait_for(1)
    assert receipt.rcpt_tos == [CUSTOMER]

    holds = {r["recipient"]: r for r in audit_records(relay) if r["action"] == "hold"}
    assert set(holds) == {NEW_YORK[0], TOKYO[0]}
    release: dict[str, float] = {}
    for (address, zone), window in zip((NEW_YORK, TOKYO), windows, strict=True):
        hold = holds[address]
        assert hold["rule_id"] == "CADENCE-SEND-WINDOW"
        assert hold["queue_id"]
        assert hold["inputs"]["time_zone"] == zone
        released = datetime.fromisoformat(hold["inputs"]["release_at"])
        local = released.astimezone(ZoneInfo(zone))
        opening = datetime.combine(
            local.date(), datetime.strptime(window["start"], "%H:%M:%S").time(), ZoneInfo(zone)
        )
        assert opening <= local < opening + timedelta(seconds=SPREAD)
        release[address] = released.timestamp()
    assert time.time() < release[NEW_YORK[0]], "setup took longer than the window's lead"

    report = held_report(relay)
    assert report["held"] == 2
    (stream,) = report["streams"]
    assert (stream["sender"], stream["campaign"], stream["held"]) == ("shop", None, 2)
    assert datetime.fromisoformat(stream["next_release"]).timestamp() == release[NEW_YORK[0]]

    relay.stop()
    relay.start()
    assert nothing_more_until(sink, 1, release[NEW_YORK[0]] - 0.5), (
        "held mail left before its window opened"
    )
    messages = sink.wait_for(2, timeout=10)
    assert time.time() >= release[NEW_YORK[0]]
    assert messages[1].rcpt_tos == [NEW_YORK[0]]

    assert nothing_more_until(sink, 2, release[TOKYO[0]] - 0.5), (
        "the Tokyo recipient left at New York's opening"
    )
    messages = sink.wait_for(3, timeout=10)
    assert time.time() >= release[TOKYO[0]]
    assert messages[2].rcpt_tos == [TOKYO[0]]
    assert held_report(relay) == {"held": 0, "streams": []}
