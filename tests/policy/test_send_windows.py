"""Send-time windows: the window arithmetic (weekday sets, windows crossing midnight, daylight
saving changes), CADENCE-SEND-WINDOW's zone and stream choice, and its policy data checks."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import tomli_w

from relay.errors import ConfigError
from relay.policy.files import load_policies
from relay.policy.model import Action, Stage
from relay.policy.windows import WEEKDAYS, Opening, SendWindow, next_opening, spread_offset
from relay.stores.models import MessageClass
from tests.policy.builders import (
    SENDER,
    consent,
    evaluate,
    make_context,
    policy_path,
    policy_with_params,
    verdicts_for,
)

BERLIN = ZoneInfo("Europe/Berlin")
RULE = "CADENCE-SEND-WINDOW"


def window(days: str, start: str, end: str) -> SendWindow:
    return SendWindow(
        frozenset(WEEKDAYS.index(day) for day in days.split(",")),
        time.fromisoformat(start),
        time.fromisoformat(end),
    )


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


MIDWEEK = window("tue,wed,thu", "10:00", "14:00")


# 2025-06-03 is a Tuesday; Berlin is UTC+2 in summer.
@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (berlin(2025, 6, 3, 11, 0), None),
        (berlin(2025, 6, 3, 10, 0), None),
        (berlin(2025, 6, 3, 9, 59), Opening(berlin(2025, 6, 3, 10, 0), timedelta(hours=4))),
        (berlin(2025, 6, 3, 14, 0), Opening(berlin(2025, 6, 4, 10, 0), timedelta(hours=4))),
        (berlin(2025, 6, 5, 15, 0), Opening(berlin(2025, 6, 10, 10, 0), timedelta(hours=4))),
        (berlin(2025, 6, 8, 23, 0), Opening(berlin(2025, 6, 10, 10, 0), timedelta(hours=4))),
    ],
    ids=["inside", "at-opening", "just-before", "at-closing", "thursday-after", "sunday"],
)
def test_weekday_window(now, expected):
    assert next_opening([MIDWEEK], now, BERLIN) == expected


def test_window_is_read_in_the_recipient_zone():
    now = datetime(2025, 6, 3, 9, 0, tzinfo=UTC)  # 11:00 in Berlin, 05:00 in New York
    assert next_opening([MIDWEEK], now, BERLIN) is None
    new_york = ZoneInfo("America/New_York")
    opening = next_opening([MIDWEEK], now, new_york)
    assert opening == Opening(datetime(2025, 6, 3, 14, 0, tzinfo=UTC), timedelta(hours=4))


def test_the_earliest_of_several_windows_opens_next():
    saturday = window("sat", "09:00", "11:00")
    opening = next_opening([MIDWEEK, saturday], berlin(2025, 6, 5, 15, 0), BERLIN)
    assert opening == Opening(berlin(2025, 6, 7, 9, 0), timedelta(hours=2))


def test_a_window_crossing_midnight_belongs_to_the_day_it_opens():
    late = window("fri", "22:00", "02:00")
    assert next_opening([late], berlin(2025, 6, 7, 1, 30), BERLIN) is None  # Saturday 01:30
    assert next_opening([late], berlin(2025, 6, 6, 23, 0), BERLIN) is None
    opening = next_opening([late], berlin(2025, 6, 7, 2, 0), BERLIN)
    assert opening == Opening(berlin(2025, 6, 13, 22, 0), timedelta(hours=4))


def test_spring_forward_shortens_the_window():
    # 2025-03-30, Sunday: Berlin's clocks go from 02:00 to 03:00.
    night = window("sun", "01:00", "04:00")
    opening = next_opening([night], berlin(2025, 3, 29, 12, 0), BERLIN)
    assert opening == Opening(datetime(2025, 3, 30, 0, 0, tzinfo=UTC), timedelta(hours=2))


def test_a_window_opening_in_the_skipped_hour_opens_after_it():
    skipped = window("sun", "02:30", "05:00")
    opening = next_opening([skipped], berlin(2025, 3, 29, 12, 0), BERLIN)
    assert opening is not None
    assert opening.at == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)  # 03:30 summer time
    assert opening.at.astimezone(BERLIN).hour == 3


def test_a_window_wholly_in_the_skipped_hour_does_not_open_that_night():
    gone = window("sun", "02:15", "03:00")
    opening = next_opening([gone], berlin(2025, 3, 29, 12, 0), BERLIN)
    assert opening is not None
    assert opening.at == berlin(2025, 4, 6, 2, 15)


def test_fall_back_lengthens_the_window_and_a_repeated_time_is_its_first():
    # 2025-10-26, Sunday: Berlin's clocks go from 03:00 back to 02:00.
    night = window("sun", "01:00", "04:00")
    opening = next_opening([night], berlin(2025, 10, 25, 12, 0), BERLIN)
    assert opening == Opening(datetime(2025, 10, 25, 23, 0, tzinfo=UTC), timedelta(hours=4))
    twice = window("sun", "02:30", "05:00")
    opening = next_opening([twice], berlin(2025, 10, 25, 12, 0), BERLIN)
    assert opening is not None
    assert opening.at == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 summer time


def test_spread_offset_is_deterministic_and_within_the_span():
    span = timedelta(hours=4)
    offsets = {spread_offset(f"r{n}@example.org\0<m1@shop.example>", span) for n in range(200)}
    assert all(timedelta(0) <= offset < span for offset in offsets)
    assert len(offsets) > 150  # spread out, not bunched at the opening
    assert spread_offset("a\0b", span) == spread_offset("a\0b", span)
    assert spread_offset("a\0b", timedelta(0)) == timedelta(0)


# -- the rule --------------------------------------------------------------------------------

# 2025-06-02 12:00 UTC (builders.NOW) is a Monday: outside Tue-Thu everywhere.
STREAMS = [
    {
        "sender": SENDER.sender_id,
        "windows": [{"days": ["tue", "wed", "thu"], "start": "10:00", "end": "14:00"}],
    }
]


@pytest.fixture
def policy(tmp_path):
    return policy_with_params(
        tmp_path, "send-windows.toml", RULE, {"streams": STREAMS, "spread": "1h"}
    )


def held(policy, **fields):
    return verdicts_for(evaluate(policy, Stage.DATA, make_context(**fields)), RULE)


@pytest.mark.parametrize(
    ("fields", "zone", "source"),
    [
        ({"consents": [consent(time_zone="Asia/Tokyo")]}, "Asia/Tokyo", "consent"),
        ({"recipient": "eva@example.de"}, "Europe/Berlin", "tld"),
        (
            {"sender": dataclasses.replace(SENDER, time_zone="America/Chicago")},
            "America/Chicago",
            "sender",
        ),
        ({}, "UTC", "default"),
    ],
    ids=["consent", "cctld", "sender", "utc"],
)
def test_commercial_mail_outside_the_window_is_held_until_the_local_opening(
    policy, fields, zone, source
):
    (verdict,) = held(policy, **fields)
    assert verdict.action is Action.HOLD
    assert verdict.reply is None
    assert (verdict.inputs["time_zone"], verdict.inputs["zone_source"]) == (zone, source)
    release = datetime.fromisoformat(str(verdict.inputs["release_at"]))
    opening = datetime(2025, 6, 3, 10, 0, tzinfo=ZoneInfo(zone))
    assert opening <= release < opening + timedelta(hours=1)
    assert verdict.inputs["spread_seconds"] == 3600


def test_the_consent_zone_wins_over_the_cctld(policy):
    record = consent(time_zone="America/Sao_Paulo")
    (verdict,) = held(policy, recipient="eva@example.de", consents=[record])
    assert (verdict.inputs["time_zone"], verdict.inputs["zone_source"]) == (
        "America/Sao_Paulo",
        "consent",
    )


def test_transactional_mail_and_other_senders_are_never_held(policy):
    assert held(policy, message_class=MessageClass.TRANSACTIONAL) == []
    assert held(policy, sender=dataclasses.replace(SENDER, sender_id="other")) == []


def test_inside_the_window_nothing_is_held(policy):
    assert held(policy, now=datetime(2025, 6, 3, 11, 0, tzinfo=UTC)) == []


def test_a_campaign_stream_wins_over_the_sender_wide_one(tmp_path):
    streams = [
        *STREAMS,
        {
            "sender": SENDER.sender_id,
            "campaign": "newsletter",
            "windows": [{"days": ["mon"], "start": "00:00", "end": "23:59"}],
        },
    ]
    policy = policy_with_params(tmp_path, "send-windows.toml", RULE, {"streams": streams})
    assert held(policy) == []  # the newsletter may go on Mondays
    (verdict,) = held(policy, list_id="offers")
    assert verdict.inputs["stream"] == f"{SENDER.sender_id}/*"


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"zones": {"de": "Europe/Berlinn"}}, "params.zones.de: Value error, 'Europe/Berlinn'"),
        (
            {"streams": [{"windows": [{"days": ["tue"], "start": "10:00", "end": "10:00"}]}]},
            "params.streams.0.windows.0: Value error, start and end are the same time",
        ),
        (
            {"streams": [{"windows": [{"days": ["tues"], "start": "10:00", "end": "11:00"}]}]},
            "params.streams.0.windows.0.days.0: Input should be 'mon'",
        ),
        ({"streams": [{"sender": "shop", "windows": []}]}, "params.streams.0.windows: List"),
    ],
)
def test_bad_window_data_is_refused_at_load(tmp_path, params, problem):
    with pytest.raises(ConfigError) as caught:
        policy_with_params(tmp_path, "send-windows.toml", RULE, params)
    (found,) = caught.value.problems
    assert f"send-windows.toml:rules.{RULE}.{problem}" in found


def test_a_hold_takes_no_reply(tmp_path):
    data = tomllib.loads(policy_path("send-windows.toml").read_text("utf-8"))
    data["rules"][RULE]["reply"] = "451 4.7.1 later"
    path = tmp_path / "send-windows.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policies([path])
    assert caught.value.problems == [
        f"{path}:rules.{RULE}.reply: a hold accepts the message (250 after DATA): it takes no reply"
    ]
