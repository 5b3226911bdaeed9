"""What the feedback stage keeps in the stores: soft bounces (counted per recipient and sender
within a window, once per bounce message), per-sender complaint and delivery counts giving the
complaint rate over rolling windows (MBP-COMPLAINT-RATE), and the sender of a bounce domain."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relay.stores.models import ComplaintRate, SenderProfile, SoftBounce
from tests.stores.helpers import HASHER, WHEN, run_stores

DAY, WEEK = timedelta(days=1), timedelta(days=7)


@pytest.fixture
def db(tmp_path):
    return tmp_path / "stores.sqlite"


def soft_bounce(source: str, days_ago: float, address: str = "ann@example.org") -> SoftBounce:
    return SoftBounce(
        address_hash=HASHER.hash(address),
        sender_id="acme",
        at=WHEN - timedelta(days=days_ago),
        status="4.2.2",
        reason="mailboxfull",
        source=source,
    )


def test_soft_bounces_are_counted_within_the_window_once_per_bounce_message(db):
    since = WHEN - WEEK

    async def record(stores):
        return [
            await stores.add_soft_bounce(soft_bounce("old", days_ago=8), since),
            await stores.add_soft_bounce(soft_bounce("b1", days_ago=3), since),
            await stores.add_soft_bounce(soft_bounce("b1", days_ago=3), since),  # again
            await stores.add_soft_bounce(soft_bounce("other", 1, "bob@example.org"), since),
            await stores.add_soft_bounce(soft_bounce("b2", days_ago=0), since),
        ]

    assert run_stores(db, record) == [0, 1, 1, 1, 2]


def test_complaint_rate_over_one_and_seven_days(db):
    async def count_and_read(stores):
        await stores.count_feedback("acme", WHEN, delivered=1000, complaints=2)
        await stores.count_feedback("acme", WHEN - timedelta(hours=3), delivered=500)
        await stores.count_feedback("acme", WHEN - timedelta(hours=23), complaints=1)
        await stores.count_feedback("acme", WHEN - timedelta(hours=24), delivered=2500)
        await stores.count_feedback("acme", WHEN - timedelta(days=6, hours=23), complaints=3)
        await stores.count_feedback("acme", WHEN - WEEK, delivered=10_000, complaints=50)
        await stores.count_feedback("other", WHEN, delivered=7, complaints=7)
        return (
            await stores.complaint_rate("acme", DAY, WHEN),
            await stores.complaint_rate("acme", WEEK, WHEN),
            await stores.complaint_rate("nobody", WEEK, WHEN),
        )

    one_day, seven_days, nobody = run_stores(db, count_and_read)
    assert one_day == ComplaintRate(complaints=3, delivered=1500, rate=3 / 1500)
    assert seven_days == ComplaintRate(complaints=6, delivered=4000, rate=6 / 4000)
    assert nobody == ComplaintRate(0, 0, None)


def test_complaints_without_deliveries_have_no_rate(db):
    async def count_and_read(stores):
        await stores.count_feedback("acme", WHEN, complaints=1)
        return await stores.complaint_rate("acme", DAY, WHEN)

    assert run_stores(db, count_and_read) == ComplaintRate(1, 0, None)


def test_sender_for_bounce_domain_finds_the_profile_by_either_spelling(db):
    profile = SenderProfile(
        sender_id="acme",
        legal_name="Acme Ltd",
        postal_address="1 Road",
        contact="privacy@bücher.example",
        verified_domains=("bücher.example",),
        bounce_domain="bounces.bücher.example",
    )

    async def lookups(stores):
        await stores.put_senders([profile])
        return [
            await stores.sender_for_bounce_domain("Bounces.Bücher.Example."),
            await stores.sender_for_bounce_domain("bounces.xn--bcher-kva.example"),
            await stores.sender_for_bounce_domain("bücher.example"),
        ]

    assert run_stores(db, lookups) == [profile, profile, None]
