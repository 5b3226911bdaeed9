"""What the admin API and feedback ask of the stores, on both backends: API tokens, suppression
and consent pages, removal and withdrawal, erasure, data-subject requests, soft bounces, bounce
domains, and clear addresses only when they are kept."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from relay.errors import StoreConflict
from relay.stores.models import (
    ApiRole,
    ApiToken,
    SenderProfile,
    SoftBounce,
    SubjectRequest,
    SubjectRequestKind,
    SuppressionKey,
    SuppressionQuery,
    SuppressionReason,
    SuppressionScope,
)
from tests.stores.helpers import HASHER, WHEN, consent, run_stores, suppression


def token(token_id: str, name: str, minutes: int = 0) -> ApiToken:
    return ApiToken(
        token_id=token_id,
        name=name,
        role=ApiRole.OPERATOR,
        secret_hash=f"{token_id:0>64}",
        created_at=WHEN + timedelta(minutes=minutes),
    )


def test_api_tokens_unique_by_id_and_name_listed_oldest_first_and_revoked_once(place):
    first, second = token("t2", "ops", 0), token("t1", "ci", 5)
    run_stores(place, lambda stores: stores.add_api_token(second))
    run_stores(place, lambda stores: stores.add_api_token(first))
    with pytest.raises(StoreConflict, match="name 'ops'"):
        run_stores(place, lambda stores: stores.add_api_token(token("t9", "ops")))
    with pytest.raises(StoreConflict, match="id 't1'"):
        run_stores(place, lambda stores: stores.add_api_token(token("t1", "other")))

    async def scenario(stores):
        listed = await stores.api_tokens()
        found = await stores.api_token(first.secret_hash)
        revoked = await stores.revoke_api_token("t1", WHEN + timedelta(hours=1))
        again = await stores.revoke_api_token("t1", WHEN + timedelta(hours=2))
        missing = await stores.revoke_api_token("nope", WHEN)
        return listed, found, revoked, again, missing, await stores.api_token("f" * 64)

    listed, found, revoked, again, missing, unknown = run_stores(place, scenario)
    assert listed == [first, second]
    assert found == first
    assert revoked == again == dataclasses.replace(second, revoked_at=WHEN + timedelta(hours=1))
    assert missing is None
    assert unknown is None


def test_suppression_pages_seek_in_key_order_with_filters(place):
    entries = [
        suppression(f"user{i}@example.org", sender_id=sender)
        for i in range(7)
        for sender in ("acme", "globex")
    ]
    listed = suppression(
        "user0@example.org",
        scope=SuppressionScope.LIST,
        list_id="news",
        reason=SuppressionReason.COMPLAINT_ARF,
    )
    entries.append(listed)
    run_stores(place, lambda stores: stores.add_suppressions(entries))
    order = sorted(entries, key=SuppressionKey.of)

    async def pages(stores, query):
        found, after = [], None
        while page := await stores.suppressions_page(query, after, 3):
            found.extend(page)
            after = SuppressionKey.of(page[-1])
        return found

    assert run_stores(place, lambda stores: pages(stores, SuppressionQuery())) == order
    acme = [entry for entry in order if entry.sender_id == "acme"]
    assert run_stores(place, lambda s: pages(s, SuppressionQuery(sender_id="acme"))) == acme
    query = SuppressionQuery(reason=SuppressionReason.COMPLAINT_ARF)
    assert run_stores(place, lambda stores: pages(stores, query)) == [listed]
    one = HASHER.hash("user0@example.org")
    mine = [entry for entry in order if entry.address_hash == one]
    assert run_stores(place, lambda s: pages(s, SuppressionQuery(address_hash=one))) == mine
    later = SuppressionQuery(received_since=WHEN + timedelta(seconds=1))
    assert run_stores(place, lambda stores: pages(stores, later)) == []


def test_removing_a_suppression_but_never_an_erasure_entry(place):
    entry = suppression("ann@example.org")
    erasure = suppression("bob@example.org", reason=SuppressionReason.ERASURE)
    run_stores(place, lambda stores: stores.add_suppressions([entry, erasure]))

    async def remove(stores):
        removed = await stores.remove_suppression(entry.address_hash, "acme", None)
        return removed, await stores.remove_suppression(entry.address_hash, "acme", None)

    assert run_stores(place, remove) == (entry, None)
    with pytest.raises(StoreConflict, match="erasure"):
        run_stores(
            place, lambda stores: stores.remove_suppression(erasure.address_hash, "acme", None)
        )
    assert (
        run_stores(
            place, lambda stores: stores.suppression_entry(erasure.address_hash, "acme", None)
        )
        == erasure
    )
    listed = run_stores(place, lambda s: s.suppressions_page(SuppressionQuery(), None, 10))
    assert listed == [erasure]


def test_consent_pages_and_withdrawal(place):
    records = [
        consent("r-3", "ann@example.org"),
        consent("r-1", "ann@example.org", sender_id="globex"),
        consent("r-2", "bob@example.org"),
        consent("r-4", "ann@example.org", withdrawn_at=WHEN),
    ]
    run_stores(place, lambda stores: stores.add_consents(records))
    ann = HASHER.hash("ann@example.org")

    async def pages(stores):
        return (
            [r.record_id for r in await stores.consents_page(None, None, None, 10)],
            [r.record_id for r in await stores.consents_page(None, None, "r-1", 2)],
            [r.record_id for r in await stores.consents_page(ann, None, None, 10)],
            [r.record_id for r in await stores.consents_page(None, "acme", None, 10)],
            [r.record_id for r in await stores.consents_page(ann, "acme", "r-3", 10)],
        )

    assert run_stores(place, pages) == (
        ["r-1", "r-2", "r-3", "r-4"],
        ["r-2", "r-3"],
        ["r-1", "r-3", "r-4"],
        ["r-2", "r-3", "r-4"],
        ["r-4"],
    )
    at = WHEN + timedelta(days=1)
    changed = run_stores(
        place, lambda stores: stores.withdraw_consents(["r-4", "r-3", "r-9", "r-1"], at)
    )
    assert [record.record_id for record in changed] == ["r-1", "r-3"]
    assert all(record.withdrawn_at == at for record in changed)
    assert run_stores(place, lambda stores: stores.consent_record("r-3")) == changed[1]
    assert run_stores(place, lambda stores: stores.consent_record("r-4")) == records[3]


def test_erasure_deletes_consent_and_bounces_clears_addresses_and_adds_entries(place):
    address = "erin@example.org"
    h = HASHER.hash(address)
    run_stores(place, lambda stores: stores.add_consents([consent("r-1", address)]))
    run_stores(place, lambda stores: stores.add_suppressions([suppression(address)]))
    bounce = SoftBounce(h, "acme", WHEN, "4.2.2", "mailboxfull", "bounce-1")
    run_stores(place, lambda stores: stores.add_soft_bounce(bounce, WHEN))
    request = SubjectRequest(
        "q-1", SubjectRequestKind.ERASURE, h, "acme", WHEN, WHEN + timedelta(days=30),
        address=address,
    )  # fmt: skip
    run_stores(place, lambda stores: stores.add_subject_request(request))
    other = consent("r-2", address, sender_id="globex")
    run_stores(place, lambda stores: stores.add_consents([other]))
    assert run_stores(place, lambda stores: stores.senders_holding(h)) == ["acme", "globex"]

    erasure = dataclasses.replace(
        suppression(address, reason=SuppressionReason.ERASURE), address=None
    )
    result = run_stores(place, lambda stores: stores.erase_address(h, ["acme"], [erasure]))
    assert result.consents_deleted == ("r-1",)
    assert (result.suppressions_cleared, result.soft_bounces_deleted) == (1, 1)
    assert (result.requests_cleared, result.suppressions_added) == (1, 1)

    async def after(stores):
        return (
            await stores.consents_for(address, "acme"),
            await stores.consent_record("r-1"),
            await stores.suppression_for(address, "acme", None),
            await stores.subject_request("q-1"),
            await stores.senders_holding(h),
            await stores.add_soft_bounce(dataclasses.replace(bounce, source="b-2"), WHEN),
            [r.record_id for r in await stores.consents_page(None, None, None, 10)],
        )

    consents, record, entry, stored_request, holders, bounces, ids = run_stores(place, after)
    assert (consents, record) == ([], None)
    assert entry == erasure
    assert stored_request == dataclasses.replace(request, address=None)
    assert holders == ["acme", "globex"]
    assert bounces == 1  # the erased bounce is gone
    assert ids == ["r-2"]


def test_subject_requests_by_due_time_and_completion(place):
    def request(request_id, days, sender_id="acme"):
        return SubjectRequest(
            request_id, SubjectRequestKind.ACCESS, HASHER.hash("x@example.org"), sender_id,
            WHEN, WHEN + timedelta(days=days),
        )  # fmt: skip

    requests = [
        request("q-b", 3),
        request("q-a", 3),
        request("q-c", 1, "globex"),
        request("q-d", 9),
    ]

    async def scenario(stores):
        for one in requests:
            await stores.add_subject_request(one)
        done = await stores.complete_subject_request("q-a", WHEN + timedelta(days=1))
        again = await stores.complete_subject_request("q-a", WHEN + timedelta(days=2))
        missing = await stores.complete_subject_request("q-z", WHEN)
        ids = [
            [r.request_id for r in await stores.subject_requests_page(o, s, a, 10)]
            for o, s, a in (
                (False, None, None),
                (True, None, None),
                (False, "acme", (WHEN + timedelta(days=3), "q-a")),
            )
        ]
        return done, again, missing, ids

    done, again, missing, ids = run_stores(place, scenario)
    assert done == again == dataclasses.replace(requests[1], completed_at=WHEN + timedelta(days=1))
    assert missing is None
    assert ids == [["q-c", "q-a", "q-b", "q-d"], ["q-c", "q-b", "q-d"], ["q-b", "q-d"]]
    with pytest.raises(StoreConflict, match="q-b"):
        run_stores(place, lambda stores: stores.add_subject_request(requests[0]))


def test_soft_bounces_count_once_per_bounce_within_the_window(place):
    h = HASHER.hash("fay@example.org")

    def bounce(source, hours):
        return SoftBounce(h, "acme", WHEN + timedelta(hours=hours), "4.2.2", "full", source)

    async def scenario(stores):
        return [
            await stores.add_soft_bounce(bounce("b-1", 0), WHEN),
            await stores.add_soft_bounce(bounce("b-1", 0), WHEN),
            await stores.add_soft_bounce(bounce("b-2", 5), WHEN),
            await stores.add_soft_bounce(bounce("b-3", 9), WHEN + timedelta(hours=4)),
        ]

    assert run_stores(place, scenario) == [1, 1, 2, 2]


def test_senders_by_bounce_domain_and_listed_by_id(place):
    profiles = [
        SenderProfile("zeta", "Zeta", "addr", "c@z.example", ("z.example",)),
        SenderProfile(
            "beta", "Beta", "addr", "c@b.example", ("b.example",), bounce_domain="bounce.example"
        ),
        SenderProfile(
            "alfa", "Alfa", "addr", "c@a.example", ("a.example",), bounce_domain="bounce.example"
        ),
    ]
    run_stores(place, lambda stores: stores.put_senders(profiles))
    moved = dataclasses.replace(profiles[2], bounce_domain="other.example")

    async def scenario(stores):
        first = await stores.sender_for_bounce_domain("BOUNCE.example.")
        await stores.put_senders([moved])
        return (
            first,
            await stores.sender_for_bounce_domain("bounce.example"),
            await stores.senders(),
        )

    first, then, listed = run_stores(place, scenario)
    assert first == profiles[2]
    assert then == profiles[1]
    assert [profile.sender_id for profile in listed] == ["alfa", "beta", "zeta"]


def test_clear_addresses_are_kept_only_when_asked(place):
    entry = suppression("gil@example.org")
    record = consent("r-1", "gil@example.org")
    run_stores(place, lambda stores: stores.add_suppressions([entry]), keep_addresses=False)
    run_stores(place, lambda stores: stores.add_consents([record]), keep_addresses=False)

    async def read(stores):
        return (
            await stores.suppression_for("gil@example.org", "acme", None),
            await stores.consent_record("r-1"),
        )

    found_entry, found_record = run_stores(place, read)
    assert found_entry == dataclasses.replace(entry, address=None)
    assert found_record == dataclasses.replace(record, address=None)
