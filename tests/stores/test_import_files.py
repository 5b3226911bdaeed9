"""Import files parsed into store records: CSV and JSON Lines, defaults, physical line numbers in
problems, and the consent rules checked at import (EU-CONSENT-PROOF, EU-CONSENT-NOT-PRETICKED)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from relay.errors import ImportRowError
from relay.stores.importing import read_consents, read_senders, read_suppressions
from relay.stores.models import (
    ConsentBasis,
    MessageClass,
    SuppressionReason,
    SuppressionScope,
)
from tests.stores.helpers import HASHER

NOW = datetime(2025, 1, 1, tzinfo=UTC)

GOOD_CONSENT = {
    "record_id": "r-1",
    "address": "erin@example.org",
    "sender_id": "acme",
    "scope": ["news"],
    "basis": "confirmed_optin",
    "jurisdictions": ["EU"],
    "obtained_at": "2024-03-01T12:00:00+01:00",
    "source": "form:signup-v3 ip=192.0.2.7",
    "evidence_ref": "doi-log/0001",
    "affirmative_action": True,
}


def jsonl(tmp_path, rows, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def problems_of(read, *args, **kwargs):
    with pytest.raises(ImportRowError) as caught:
        read(*args, **kwargs)
    return caught.value.problems


def test_suppression_defaults(tmp_path):
    path = tmp_path / "unsubscribes.csv"
    path.write_text("address,sender_id\n Alice@Example.org ,acme\n")
    (entry,) = read_suppressions(path, HASHER, now=NOW)
    assert entry.address_hash == HASHER.hash("alice@example.org")
    assert entry.address == "Alice@Example.org"
    assert entry.scope is SuppressionScope.SENDER
    assert entry.reason is SuppressionReason.MANUAL
    assert entry.source == "import:unsubscribes.csv"
    assert entry.received_at == NOW


def test_csv_problems_name_physical_lines(tmp_path):
    # A quoted value spanning two lines shifts every later line number by one.
    path = tmp_path / "suppressions.csv"
    path.write_text(
        "address,sender_id,scope,list_id,source\n"  # 1
        'a@example.org,acme,sender,,"operator\nticket 7"\n'  # 2-3
        "\n"  # 4
        "not-an-address,acme,,,\n"  # 5
        "b@example.org,acme,sender+list,,\n"  # 6
        "c@example.org,acme\n"  # 7
    )
    assert problems_of(read_suppressions, path, HASHER) == [
        f"{path}:5: address: 'not-an-address' does not look like an e-mail address"
        " (local@domain.tld)",
        f"{path}:6: scope sender+list needs a list_id",
        f"{path}:7: 2 values, but the header has 5 columns",
    ]


def test_unknown_and_missing_columns_are_named_at_the_header(tmp_path):
    path = tmp_path / "suppressions.csv"
    path.write_text("address,colour\na@example.org,red\n")
    problems = problems_of(read_suppressions, path, HASHER)
    assert problems[0].startswith(f"{path}:1: unknown column 'colour'")
    assert problems[1] == f"{path}:1: required column 'sender_id' is missing"


def test_jsonl_problems_name_lines_and_unknown_fields(tmp_path):
    path = tmp_path / "suppressions.ndjson"
    path.write_text(
        '{"address": "a@example.org", "sender_id": "acme"}\n'
        "\n"
        '{"address": "b@example.org", "sender_id": "acme", "colour": "red"}\n'
        "{not json\n"
        '["a list"]\n'
        '{"address": "c@example.org", "sender_id": "acme", "reason": "bored"}\n'
    )
    problems = problems_of(read_suppressions, path, HASHER)
    assert problems[:3] == [
        f"{path}:3: colour: unknown field",
        f"{path}:4: not valid JSON: Expecting property name enclosed in double quotes (column 2)",
        f"{path}:5: expected a JSON object, got list",
    ]
    assert problems[3].startswith(f"{path}:6: reason: Input should be")
    assert problems[3].endswith("(got 'bored')")


def test_format_from_option_when_the_extension_says_nothing(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text('{"address": "a@example.org", "sender_id": "acme"}\n')
    assert problems_of(read_suppressions, path, HASHER)[0].startswith(
        f"{path}: cannot tell the format"
    )
    assert len(read_suppressions(path, HASHER, file_format="jsonl")) == 1


def test_consent_record_from_jsonl_and_csv(tmp_path):
    (from_json,) = read_consents(jsonl(tmp_path, [GOOD_CONSENT]), HASHER, now=NOW)
    csv_path = tmp_path / "consent.csv"
    csv_path.write_text(
        "record_id,address,sender_id,scope,basis,jurisdictions,obtained_at,source,evidence_ref,"
        "affirmative_action,bundled\n"
        "r-1,erin@example.org,acme,news,confirmed_optin,eu,2024-03-01T11:00:00Z,"
        "form:signup-v3 ip=192.0.2.7,doi-log/0001,true,false\n"
    )
    (from_csv,) = read_consents(csv_path, HASHER, now=NOW)
    assert from_json == from_csv
    assert from_json.obtained_at == datetime(2024, 3, 1, 11, tzinfo=UTC)
    assert from_json.jurisdictions == frozenset({"EU"})
    assert from_json.basis is ConsentBasis.CONFIRMED_OPTIN


def test_consent_rules_checked_at_import(tmp_path):
    rows = [
        {**GOOD_CONSENT, "record_id": "no-evidence", "evidence_ref": ""},
        {key: value for key, value in GOOD_CONSENT.items() if key != "affirmative_action"},
        {**GOOD_CONSENT, "record_id": "pre-ticked", "affirmative_action": False},
        {**GOOD_CONSENT, "record_id": "bundled", "bundled": True},
        {**GOOD_CONSENT, "record_id": "future", "obtained_at": "2030-01-01T00:00:00Z"},
        {**GOOD_CONSENT, "record_id": "naive", "obtained_at": "2024-01-01T00:00:00"},
        {**GOOD_CONSENT, "record_id": "soft", "basis": "soft_optin_customer"},
        {**GOOD_CONSENT, "record_id": "all-and-news", "scope": ["*", "news"]},
        {**GOOD_CONSENT, "record_id": "r-1"},
    ]
    path = jsonl(tmp_path, rows)
    problems = problems_of(read_consents, path, HASHER, now=NOW)
    expected = [
        (1, "evidence_ref: required by EU-CONSENT-PROOF (GDPR Art. 7(1))"),
        (2, "affirmative_action: missing, must be true: EU-CONSENT-NOT-PRETICKED"),
        (3, "affirmative_action: false, must be true: EU-CONSENT-NOT-PRETICKED"),
        (4, "bundled: must be false: EU-CONSENT-NOT-PRETICKED (GDPR Art. 4(11), 7(2),(4))"),
        (5, "obtained_at: 2030-01-01T00:00:00+00:00 is in the future"),
        (6, "obtained_at: Input should have timezone info"),
        (7, "basis soft_optin_customer needs product_category"),
        (8, "scope: * (all commercial mail) stands alone"),
    ]
    assert len(problems) == len(expected)
    for problem, (line, start) in zip(problems, expected, strict=True):
        assert problem.startswith(f"{path}:{line}: {start}"), problem


def test_a_record_id_given_twice_in_a_file_is_refused(tmp_path):
    path = jsonl(tmp_path, [GOOD_CONSENT, {**GOOD_CONSENT, "address": "other@example.org"}])
    assert problems_of(read_consents, path, HASHER, now=NOW) == [
        f"{path}:2: record_id: 'r-1' already given on line 1"
    ]


def test_sender_profiles_from_csv(tmp_path):
    path = tmp_path / "senders.csv"
    path.write_text(
        "sender_id,legal_name,postal_address,contact,verified_domains,default_jurisdiction,"
        "message_class,users\n"
        'acme,Acme Ltd,"1 Road\nTown",privacy@acme.example,Acme.Example news.acme.example.,gb,'
        "mixed,acme-app acme-crm\n"
        "globex,Globex,3 Avenue,https://globex.example/contact,globex.example,,,\n"
    )
    acme, globex = read_senders(path)
    assert acme.verified_domains == ("acme.example", "news.acme.example")
    assert acme.postal_address == "1 Road\nTown"
    assert acme.default_jurisdiction == "GB"
    assert acme.message_class is MessageClass.MIXED
    assert acme.users == ("acme-app", "acme-crm")
    assert globex.message_class is MessageClass.COMMERCIAL
    assert globex.users == ()


def test_sender_problems(tmp_path):
    path = tmp_path / "senders.jsonl"
    base = {
        "sender_id": "acme",
        "legal_name": "Acme",
        "postal_address": "1 Road",
        "contact": "privacy@acme.example",
        "verified_domains": ["acme.example"],
    }
    path.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                base,
                {**base, "sender_id": "b", "verified_domains": ["acme.example"]},
                {**base, "sender_id": "c", "contact": "call us", "verified_domains": ["x_"]},
                {**base, "sender_id": "d", "default_jurisdiction": "EUR", "verified_domains": []},
            ]
        )
    )
    assert problems_of(read_senders, path) == [
        f"{path}:3: contact: 'call us' is neither an e-mail address nor an http(s) or mailto: URL",
        f"{path}:3: verified_domains[0]: 'x_' is not a domain name",
        f"{path}:4: verified_domains: give at least one verified From domain",
        f"{path}:4: default_jurisdiction: 'EUR' is not a two-letter jurisdiction code"
        " (US, EU, CN, ...)",
    ]
    path.write_text("\n".join(json.dumps(row) for row in [base, {**base, "sender_id": "b"}]))
    assert problems_of(read_senders, path) == [
        f"{path}:2: verified_domains: 'acme.example' already given on line 1"
    ]


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "suppressions.csv"
    path.write_bytes(b"address,sender_id\na@example.org,acme\nb\xe9@example.org,acme\n")
    assert problems_of(read_suppressions, path, HASHER) == [f"{path}:3: not UTF-8 text"]


def test_sender_fix_preferences_are_optional_booleans(tmp_path):
    path = tmp_path / "senders.csv"
    path.write_text(
        "sender_id,legal_name,postal_address,contact,verified_domains,fix_us,fixes_allowed\n"
        "acme,Acme Ltd,1 Road,privacy@acme.example,acme.example,true,false\n"
        "globex,Globex,3 Avenue,privacy@globex.example,globex.example,,\n"
    )
    acme, globex = read_senders(path)
    assert (acme.fix_us, acme.fixes_allowed) == (True, False)
    assert (globex.fix_us, globex.fixes_allowed) == (False, True)


def test_sender_bounce_domain_is_a_verified_domain_or_below_one(tmp_path):
    path = tmp_path / "senders.csv"
    header = "sender_id,legal_name,postal_address,contact,verified_domains,bounce_domain\n"
    path.write_text(
        header + "acme,Acme Ltd,1 Road,privacy@acme.example,acme.example,Bounces.Acme.Example.\n"
        "globex,Globex,3 Avenue,privacy@globex.example,globex.example news.globex.example,"
        "news.globex.example\n"
        "initech,Initech,5 Lane,privacy@initech.example,initech.example,\n"
    )
    acme, globex, initech = read_senders(path)
    assert acme.bounce_domain == "bounces.acme.example"
    assert globex.bounce_domain == "news.globex.example"
    assert initech.bounce_domain is None

    path.write_text(
        header + "acme,Acme Ltd,1 Road,privacy@acme.example,acme.example,bounces.acme.example.org\n"
        "globex,Globex,3 Avenue,privacy@globex.example,globex.example,notglobex.example\n"
        "initech,Initech,5 Lane,privacy@initech.example,initech.example,bounces_\n"
    )
    assert problems_of(read_senders, path) == [
        f"{path}:2: bounce_domain: 'bounces.acme.example.org' is neither one of the"
        " verified_domains nor a subdomain of one",
        f"{path}:3: bounce_domain: 'notglobex.example' is neither one of the verified_domains"
        " nor a subdomain of one",
        f"{path}:4: bounce_domain: 'bounces_' is not a domain name",
    ]
