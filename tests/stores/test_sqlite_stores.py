"""The stores on both backends (a SQLite file, a real redis-server): round trips, suppression
scopes, immutable consent records, sender lookups; and StoreUnavailable when the SQLite database
cannot be used."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from relay.errors import StoreConflict, StoreUnavailable
from relay.stores.models import (
    ConsentBasis,
    MessageClass,
    SenderProfile,
    SuppressionReason,
    SuppressionScope,
)
from tests.stores.helpers import WHEN, consent, make_stores, run_stores, suppression


@pytest.fixture
def db(place):
    return place


@pytest.fixture
def sqlite_db(tmp_path):
    return tmp_path / "state" / "stores.sqlite"


def test_suppression_round_trip_survives_reopen(db):
    sender_wide = suppression("alice@example.org")
    list_only = suppression(
        "bob@example.org",
        scope=SuppressionScope.LIST,
        list_id="news",
        reason=SuppressionReason.COMPLAINT_ARF,
    )
    added = run_stores(db, lambda stores: stores.add_suppressions([sender_wide, list_only]))
    assert added == 2

    async def read(stores):
        return (
            await stores.suppression_for("alice@example.org", "acme", None),
            await stores.suppression_for("bob@example.org", "acme", "news"),
        )

    assert run_stores(db, read) == (sender_wide, list_only)


def test_adding_an_entry_again_counts_nothing_new(db):
    entry = suppression("alice@example.org")
    assert run_stores(db, lambda stores: stores.add_suppressions([entry])) == 1
    assert run_stores(db, lambda stores: stores.add_suppressions([entry, entry])) == 0


def test_sender_wide_entry_suppresses_every_list_of_that_sender_only(db):
    run_stores(db, lambda stores: stores.add_suppressions([suppression("alice@example.org")]))

    async def lookups(stores):
        return [
            await stores.suppression_for("alice@example.org", "acme", list_id)
            for list_id in (None, "news", "offers")
        ] + [await stores.suppression_for("alice@example.org", "other-sender", "news")]

    *same_sender, other_sender = run_stores(db, lookups)
    assert all(
        entry is not None and entry.scope is SuppressionScope.SENDER for entry in same_sender
    )
    assert other_sender is None


def test_list_entry_suppresses_that_list_only(db):
    entry = suppression("bob@example.org", scope=SuppressionScope.LIST, list_id="news")
    run_stores(db, lambda stores: stores.add_suppressions([entry]))

    async def lookups(stores):
        return {
            list_id: await stores.suppression_for("bob@example.org", "acme", list_id)
            for list_id in ("news", "offers", None)
        }

    found = run_stores(db, lookups)
    assert found == {"news": entry, "offers": None, None: None}


def test_sender_wide_entry_is_preferred_over_a_list_entry(db):
    list_entry = suppression("carol@example.org", scope=SuppressionScope.LIST, list_id="news")
    sender_entry = suppression("carol@example.org", reason=SuppressionReason.ERASURE)
    run_stores(db, lambda stores: stores.add_suppressions([list_entry, sender_entry]))
    found = run_stores(
        db, lambda stores: stores.suppression_for("carol@example.org", "acme", "news")
    )
    assert found == sender_entry


def test_lookup_ignores_case_and_surrounding_space_but_not_tags_or_dots(db):
    run_stores(
        db, lambda stores: stores.add_suppressions([suppression("Dave.Smith+news@Example.ORG")])
    )

    async def lookups(stores):
        return [
            await stores.suppression_for(address, "acme", None) is not None
            for address in (
                "  dave.smith+news@example.org ",
                "DAVE.SMITH+NEWS@EXAMPLE.ORG",
                "davesmith+news@example.org",
                "dave.smith@example.org",
            )
        ]

    assert run_stores(db, lookups) == [True, True, False, False]


def test_consent_round_trip_newest_first(db):
    older = consent("r-1", "erin@example.org", obtained_at=WHEN)
    newer = consent(
        "r-2",
        "erin@example.org",
        obtained_at=(WHEN + timedelta(days=3)).astimezone(timezone(timedelta(hours=2))),
        scope=("*",),
        basis=ConsentBasis.CA_IMPLIED_EBR,
        jurisdictions=frozenset({"CA"}),
        notice_version=None,
        expires_at=WHEN + timedelta(days=730),
        withdrawn_at=WHEN + timedelta(days=10, microseconds=1),
        product_category="hardware",
    )
    other_sender = consent("r-3", "erin@example.org", sender_id="globex")
    assert run_stores(db, lambda stores: stores.add_consents([older, newer, other_sender])) == 3

    found = run_stores(db, lambda stores: stores.consents_for("ERIN@example.org", "acme"))
    assert found == [newer, older]
    assert all(record.obtained_at.tzinfo is not None for record in found)
    assert found[0].covers(None, WHEN + timedelta(days=5))
    assert not found[0].covers("news", WHEN + timedelta(days=11))


def test_consent_records_are_immutable(db):
    original = consent("r-1", "frank@example.org")
    run_stores(db, lambda stores: stores.add_consents([original]))

    changed = consent("r-1", "frank@example.org", evidence_ref="forged")
    with pytest.raises(StoreConflict, match="r-1"):
        run_stores(db, lambda stores: stores.add_consents([changed]))

    # All or nothing: the new record of a refused batch is not stored either.
    fresh = consent("r-2", "frank@example.org")
    with pytest.raises(StoreConflict, match="r-1"):
        run_stores(db, lambda stores: stores.add_consents([fresh, changed]))
    with pytest.raises(StoreConflict, match="given twice"):
        run_stores(db, lambda stores: stores.add_consents([fresh, fresh]))

    assert run_stores(db, lambda stores: stores.consents_for("frank@example.org", "acme")) == [
        original
    ]


ACME = SenderProfile(
    sender_id="acme",
    legal_name="Acme Widgets Ltd",
    postal_address="1 Road Street\nTown AB1 2CD\nUnited Kingdom",
    contact="privacy@acme.example",
    verified_domains=("acme.example", "news.acme.example"),
    default_jurisdiction="EU",
    message_class=MessageClass.COMMERCIAL,
    users=("acme-app", "acme-crm"),
)


def test_a_large_import_is_stored_whole_and_checked_whole_first(db):
    # Larger than a Redis transaction (10,000): written in several, every id checked first.
    records = [consent(f"big-{n}", f"user{n}@example.org") for n in range(25_000)]
    entries = [suppression(f"user{n}@example.org") for n in range(12_000)]
    assert run_stores(db, lambda stores: stores.add_consents(records)) == 25_000
    assert run_stores(db, lambda stores: stores.add_suppressions(entries)) == 12_000
    assert run_stores(db, lambda stores: stores.add_suppressions(entries)) == 0

    late = [consent(f"late-{n}", f"user{n}@example.org") for n in range(10_001)]
    late[-1] = records[0]  # stored already: in the last chunk, nothing of the batch is stored
    with pytest.raises(StoreConflict, match="big-0"):
        run_stores(db, lambda stores: stores.add_consents(late))

    def lookups(stores):
        return asyncio.gather(
            stores.consents_for("user24999@example.org", "acme"),
            stores.consents_for("user0@example.org", "acme"),
            stores.suppression_for("user11999@example.org", "acme", None),
        )

    last, first, suppressed = run_stores(db, lookups)
    assert [record.record_id for record in last] == ["big-24999"]
    assert [record.record_id for record in first] == ["big-0"]
    assert suppressed is not None


def test_sender_profile_round_trip_and_lookups(db):
    assert run_stores(db, lambda stores: stores.put_senders([ACME])) == 1

    async def lookups(stores):
        return (
            await stores.sender_for_user("acme-crm"),
            await stores.sender_for_domain("News.Acme.Example."),
            await stores.sender_for_domain("other.example"),
            await stores.sender_for_user("nobody"),
            await stores.sender("acme"),
        )

    by_user, by_domain, unknown_domain, unknown_user, by_id = run_stores(db, lookups)
    assert by_user == by_domain == by_id == ACME
    assert unknown_domain is None
    assert unknown_user is None


def test_replacing_a_profile_releases_its_old_domains_and_users(db):
    run_stores(db, lambda stores: stores.put_senders([ACME]))
    moved = SenderProfile(
        sender_id="acme",
        legal_name="Acme Widgets Ltd",
        postal_address="2 New Road",
        contact="https://acme.example/contact",
        verified_domains=("acme.example",),
        message_class=MessageClass.MIXED,
        users=("acme-app",),
    )
    globex = SenderProfile(
        sender_id="globex",
        legal_name="Globex Corp",
        postal_address="3 Avenue",
        contact="dpo@globex.example",
        verified_domains=("news.acme.example", "globex.example"),
        users=("acme-crm",),
    )
    run_stores(db, lambda stores: stores.put_senders([globex, moved]))

    async def lookups(stores):
        return (
            await stores.sender_for_domain("news.acme.example"),
            await stores.sender_for_user("acme-crm"),
            await stores.sender_for_domain("acme.example"),
        )

    assert run_stores(db, lookups) == (globex, globex, moved)


def test_a_domain_of_another_sender_is_a_conflict_and_nothing_changes(db):
    run_stores(db, lambda stores: stores.put_senders([ACME]))
    intruder = SenderProfile(
        sender_id="intruder",
        legal_name="Intruder",
        postal_address="nowhere",
        contact="x@intruder.example",
        verified_domains=("intruder.example", "acme.example"),
    )
    with pytest.raises(StoreConflict, match=r"acme\.example.*acme"):
        run_stores(db, lambda stores: stores.put_senders([intruder]))

    async def lookups(stores):
        return (
            await stores.sender("intruder"),
            await stores.sender_for_domain("intruder.example"),
            await stores.sender_for_domain("acme.example"),
        )

    assert run_stores(db, lookups) == (None, None, ACME)


def test_a_directory_in_place_of_the_database_is_unavailable(tmp_path):
    path = tmp_path / "stores.sqlite"
    path.mkdir()
    with pytest.raises(StoreUnavailable, match=r"stores\.sqlite"):
        run_stores(path, lambda stores: stores.suppression_for("a@example.org", "acme", None))


def test_a_file_that_is_not_a_database_is_unavailable(tmp_path):
    path = tmp_path / "stores.sqlite"
    path.write_bytes(b"this is not a database, just some bytes" * 200)
    with pytest.raises(StoreUnavailable, match="not a database"):
        run_stores(path, lambda stores: stores.suppression_for("a@example.org", "acme", None))


def test_lookups_before_open_and_after_close_are_unavailable(db):
    async def scenario():
        stores = make_stores(db, keep_addresses=True)
        problems = []
        for _ in range(2):
            try:
                await stores.consents_for("a@example.org", "acme")
            except StoreUnavailable as exc:
                problems.append(str(exc))
            await stores.open()
            await stores.close()
        return problems

    problems = asyncio.run(scenario())
    assert len(problems) == 2
    assert all("not open" in problem for problem in problems)


def test_naive_datetimes_are_refused(db):
    naive = consent("r-naive", "gina@example.org", obtained_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        run_stores(db, lambda stores: stores.add_consents([naive]))


def test_fix_preferences_and_bounce_domain_round_trip(db):
    opted = dataclasses.replace(
        ACME, fix_us=True, fixes_allowed=False, bounce_domain="bounces.acme.example"
    )
    run_stores(db, lambda stores: stores.put_senders([opted]))
    assert run_stores(db, lambda stores: stores.sender("acme")) == opted
    assert ACME.fix_us is False
    assert ACME.fixes_allowed is True
    assert ACME.bounce_domain is None


def test_tables_without_the_added_columns_get_them(sqlite_db):
    db = sqlite_db
    entry = suppression(address="ann@example.org")
    run_stores(db, lambda stores: stores.put_senders([ACME]))
    run_stores(db, lambda stores: stores.add_suppressions([entry]))
    with sqlite3.connect(db) as old:
        old.execute("DROP INDEX senders_by_bounce_domain")  # made with bounce_domain
        for column in ("fix_us", "fixes_allowed", "bounce_domain"):
            old.execute(f"ALTER TABLE senders DROP COLUMN {column}")
        old.execute("ALTER TABLE suppressions DROP COLUMN audit_ref")
    assert run_stores(db, lambda stores: stores.sender("acme")) == ACME
    found = run_stores(
        db, lambda stores: stores.suppression_for("ann@example.org", entry.sender_id, None)
    )
    assert found == entry


def test_a_suppression_keeps_the_audit_record_that_caused_it(db):
    entry = dataclasses.replace(suppression(address="ann@example.org"), audit_ref="ab" * 32)
    run_stores(db, lambda stores: stores.add_suppressions([entry]))
    found = run_stores(
        db, lambda stores: stores.suppression_for("ann@example.org", entry.sender_id, None)
    )
    assert found is not None
    assert found.audit_ref == "ab" * 32
