"""The recipients' and senders' time zones (send-time windows): imported as IANA names, checked
at import with FILE:LINE problems, kept by the stores."""

from __future__ import annotations

import dataclasses
import sqlite3

from relay.stores.importing import read_consents, read_senders
from relay.stores.models import MessageClass, SenderProfile
from tests.stores.helpers import HASHER, consent, run_stores
from tests.stores.test_import_files import GOOD_CONSENT, NOW, jsonl, problems_of

SENDER = SenderProfile(
    sender_id="acme",
    legal_name="Acme Widgets Ltd",
    postal_address="1 Road Street",
    contact="privacy@acme.example",
    verified_domains=("acme.example",),
    message_class=MessageClass.COMMERCIAL,
    time_zone="Europe/London",
)


def test_time_zones_are_imported_and_checked(tmp_path):
    rows = [GOOD_CONSENT | {"time_zone": "Asia/Tokyo"}, GOOD_CONSENT | {"record_id": "r-2"}]
    tokyo, unknown = read_consents(jsonl(tmp_path, rows), HASHER, now=NOW)
    assert (tokyo.time_zone, unknown.time_zone) == ("Asia/Tokyo", None)
    path = jsonl(tmp_path, [GOOD_CONSENT | {"time_zone": "Mars/Olympus"}])
    assert problems_of(read_consents, path, HASHER, now=NOW) == [
        f"{path}:1: time_zone: 'Mars/Olympus' is not an IANA time zone name, e.g. 'Europe/Berlin'"
    ]
    senders = tmp_path / "senders.csv"
    header = "sender_id,legal_name,postal_address,contact,verified_domains,time_zone\n"
    senders.write_text(header + "acme,Acme Ltd,1 Road,privacy@acme.example,acme.example,UTC\n")
    (acme,) = read_senders(senders)
    assert acme.time_zone == "UTC"
    senders.write_text(header + "acme,Acme Ltd,1 Road,privacy@acme.example,acme.example,CEST\n")
    (problem,) = problems_of(read_senders, senders)
    assert problem.startswith(f"{senders}:2: time_zone: 'CEST' is not an IANA time zone name")


def test_time_zones_round_trip_and_older_stores_get_the_columns(tmp_path):
    db = tmp_path / "stores.sqlite"
    record = consent("r-1", "ann@example.org", time_zone="America/New_York")
    run_stores(db, lambda stores: stores.put_senders([SENDER]))
    run_stores(db, lambda stores: stores.add_consents([record]))
    assert run_stores(db, lambda stores: stores.sender("acme")) == SENDER
    (found,) = run_stores(db, lambda stores: stores.consents_for("ann@example.org", "acme"))
    assert found.time_zone == "America/New_York"
    with sqlite3.connect(db) as old:
        old.execute("ALTER TABLE senders DROP COLUMN time_zone")
        old.execute("ALTER TABLE consents DROP COLUMN time_zone")
    reopened = run_stores(db, lambda stores: stores.sender("acme"))
    assert reopened == dataclasses.replace(SENDER, time_zone=None)
    (found,) = run_stores(db, lambda stores: stores.consents_for("ann@example.org", "acme"))
    assert found.time_zone is None
