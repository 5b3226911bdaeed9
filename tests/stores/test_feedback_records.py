"""What the feedback stage keeps in the stores: soft bounces (counted per recipient and sender
within a window, once per bounce message) and the sender of a bounce domain. The complaint rate
is in test_stats.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from relay.stores.models import SenderProfile, SoftBounce
from tests.stores.helpers import HASHER, WHEN, run_stores

WEEK = timedelta(days=7)


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
