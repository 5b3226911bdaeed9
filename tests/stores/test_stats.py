"""The list-health figures: hourly counts per sender, campaign, kind and rule, summed over rolling
windows in whole hours; the campaign of an accepted message remembered for later feedback; the
complaint rate over every campaign of a sender (MBP-COMPLAINT-RATE); and opened with the stores."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from relay.errors import StoreUnavailable
from relay.stores.models import ComplaintRate
from relay.stores.stats import (
    CAMPAIGN_MEMORY,
    ComplaintLevel,
    Figures,
    Kind,
    SqliteStats,
    Tally,
    tally,
)
from tests.stores.helpers import WHEN, run_stores

DAY, WEEK = timedelta(days=1), timedelta(days=7)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "stores.sqlite"


def run(db, action):
    async def go():
        async with SqliteStats(db) as stats:
            return await action(stats)

    return asyncio.run(go())


def test_counts_are_summed_per_sender_and_campaign_over_the_window(db):
    async def count_and_read(stats):
        await stats.add(
            WHEN,
            [
                Tally("acme", "spring", Kind.ACCEPTED, 10),
                Tally("acme", "spring", Kind.DELIVERED, 8),
                Tally("acme", "spring", Kind.HARD_BOUNCE),
                Tally("acme", "spring", Kind.SOFT_BOUNCE),
                Tally("acme", "spring", Kind.REFUSED, 2, "MBP-UNSUB-48H"),
                Tally("acme", "", Kind.REFUSED, 1, "EU-CONSENT-REQUIRED"),
                Tally("other", "spring", Kind.ACCEPTED, 5),
            ],
        )
        await stats.add(
            WHEN - timedelta(hours=23),
            [
                Tally("acme", "spring", Kind.DELIVERED, 2),
                Tally("acme", "spring", Kind.COMPLAINT),
                Tally("acme", "spring", Kind.UNSUBSCRIBE),
                Tally("acme", "spring", Kind.REFUSED, 1, "MBP-UNSUB-48H"),
            ],
        )
        await stats.add(WHEN - timedelta(hours=24), [Tally("acme", "spring", Kind.ACCEPTED, 90)])
        return (
            await stats.figures(DAY, WHEN, sender_id="acme"),
            await stats.figures(WEEK, WHEN, campaign="spring"),
        )

    day, week = run(db, count_and_read)
    spring = Figures(
        accepted=10,
        delivered=10,
        hard_bounces=1,
        soft_bounces=1,
        complaints=1,
        unsubscribes=1,
        refusals={"MBP-UNSUB-48H": 3},
    )
    assert day == {
        ("acme", ""): Figures(refusals={"EU-CONSENT-REQUIRED": 1}),
        ("acme", "spring"): spring,
    }
    assert week == {
        ("acme", "spring"): Figures(**{**_counts(spring), "accepted": 100}),
        ("other", "spring"): Figures(accepted=5),
    }


def _counts(figures: Figures) -> dict[str, object]:
    return {
        name: getattr(figures, name)
        for name in (
            "accepted",
            "delivered",
            "hard_bounces",
            "soft_bounces",
            "complaints",
            "unsubscribes",
            "refusals",
        )
    }


def test_rates_and_complaint_thresholds():
    figures = Figures(accepted=200, delivered=1000, hard_bounces=4, soft_bounces=10)
    assert (figures.hard_bounce_rate, figures.soft_bounce_rate) == (0.02, 0.05)
    assert (figures.complaint_rate, figures.unsubscribe_rate) == (0.0, 0.0)
    assert figures.complaint_level is None
    assert Figures(delivered=1000, complaints=1).complaint_level is ComplaintLevel.WARN
    assert Figures(delivered=1000, complaints=2).complaint_level is ComplaintLevel.WARN
    assert Figures(delivered=1000, complaints=3).complaint_level is ComplaintLevel.PAUSE
    nothing = Figures(complaints=1, hard_bounces=1)
    assert (nothing.hard_bounce_rate, nothing.complaint_rate, nothing.complaint_level) == (
        None,
        None,
        None,
    )


def test_complaint_rate_over_one_and_seven_days_and_every_campaign(db):
    def counts(sender, campaign, *, delivered=0, complaints=0):
        return [
            Tally(sender, campaign, Kind.DELIVERED, delivered),
            Tally(sender, campaign, Kind.COMPLAINT, complaints),
        ]

    async def count_and_read(stats):
        await stats.add(WHEN, counts("acme", "a", delivered=1000, complaints=2))
        await stats.add(WHEN - timedelta(hours=3), counts("acme", "b", delivered=500))
        await stats.add(WHEN - timedelta(hours=23), counts("acme", "", complaints=1))
        await stats.add(WHEN - timedelta(hours=24), counts("acme", "a", delivered=2500))
        await stats.add(WHEN - timedelta(days=6, hours=23), counts("acme", "b", complaints=3))
        await stats.add(WHEN - WEEK, counts("acme", "a", delivered=10_000, complaints=50))
        await stats.add(WHEN, counts("other", "a", delivered=7, complaints=7))
        await stats.add(WHEN, counts("lonely", "", complaints=1))
        return (
            await stats.complaint_rate("acme", DAY, WHEN),
            await stats.complaint_rate("acme", WEEK, WHEN),
            await stats.complaint_rate("nobody", WEEK, WHEN),
            await stats.complaint_rate("lonely", DAY, WHEN),
        )

    one_day, seven_days, nobody, lonely = run(db, count_and_read)
    assert one_day == ComplaintRate(complaints=3, delivered=1500, rate=3 / 1500)
    assert seven_days == ComplaintRate(complaints=6, delivered=4000, rate=6 / 4000)
    assert nobody == ComplaintRate(0, 0, None)
    assert lonely == ComplaintRate(1, 0, None)


def test_the_campaign_of_a_message_is_remembered_for_the_longest_window(db):
    async def remember(stats):
        await stats.add(WHEN - CAMPAIGN_MEMORY - timedelta(hours=1), [], [("OLD1", "winter")])
        await stats.add(WHEN, [Tally("acme", "spring", Kind.ACCEPTED)], [("NEW1", "spring")])
        return [await stats.campaign_of(queue_id) for queue_id in ("NEW1", "OLD1", "NONE")]

    assert run(db, remember) == ["spring", "", ""]


def test_opened_and_closed_with_the_stores(db):
    async def count(stores):
        await stores.stats.add(WHEN, [Tally("acme", "", Kind.ACCEPTED, 3)])
        return await stores.stats.figures(DAY, WHEN)

    assert run_stores(db, count) == {("acme", ""): Figures(accepted=3)}
    assert run_stores(db, lambda stores: stores.stats.figures(DAY, WHEN)) == {
        ("acme", ""): Figures(accepted=3)
    }


def test_tally_logs_instead_of_raising_when_the_store_is_closed(db, caplog):
    async def closed():
        stats = SqliteStats(db)
        with pytest.raises(StoreUnavailable):
            await stats.add(WHEN, [Tally("acme", "x", Kind.ACCEPTED)])
        await tally(stats, WHEN, [Tally("acme", "x", Kind.ACCEPTED)])

    asyncio.run(closed())
    assert "list-health figures not counted (acme/x accepted+1)" in caplog.text


def test_concurrent_additions_are_all_counted(db):
    async def count_concurrently(stats):
        await asyncio.gather(
            *(
                stats.add(WHEN, [Tally("acme", "spring", Kind.ACCEPTED, 2)], [(f"Q{n}", "spring")])
                for n in range(50)
            )
        )
        return await stats.figures(DAY, WHEN), await stats.campaign_of("Q49")

    figures, campaign = run(db, count_concurrently)
    assert figures == {("acme", "spring"): Figures(accepted=100)}
    assert campaign == "spring"
