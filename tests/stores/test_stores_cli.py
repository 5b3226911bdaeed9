"""`relay suppressions|consent|senders import` and `relay suppressions check` as an operator runs
them: real subprocesses on a TOML config whose state_dir is the test's directory."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from relay.stores.hashing import AddressHasher
from tests.stores.helpers import run_stores

RELAY = [sys.executable, "-m", "relay"]

SUPPRESSIONS_CSV = (
    "address,sender_id,scope,list_id,reason,received_at,source_message_id\n"
    "alice@example.org,acme,sender,,unsubscribe_one_click,2024-03-01T12:00:00Z,<m1@acme>\n"
    "Bob@Example.org,acme,sender+list,news,complaint_arf,,\n"
    "carol@example.org,globex,,,,,\n"
)

CONSENT_ROW = {
    "record_id": "r-1",
    "address": "erin@example.org",
    "sender_id": "acme",
    "scope": ["news", "offers"],
    "basis": "confirmed_optin",
    "jurisdictions": "EU",
    "obtained_at": "2024-03-01T12:00:00+01:00",
    "source": "form:signup-v3 ip=192.0.2.7 ua=Mozilla/5.0",
    "evidence_ref": "doi-log/2024/03/01/0001",
    "notice_version": "privacy-2024-01",
    "affirmative_action": True,
    "bundled": False,
}


class Operator:
    """Runs relay commands against one config and state directory."""

    def __init__(self, directory: Path, extra_toml: str = "") -> None:
        self.directory = directory
        self.state_dir = directory / "var"
        self.config = directory / "relay.toml"
        self.config.write_text(f'state_dir = "{self.state_dir}"\n{extra_toml}')

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*RELAY, *args, "--config", str(self.config)],
            cwd=self.directory,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def write(self, name: str, text: str) -> Path:
        path = self.directory / name
        path.write_text(text)
        return path

    def jsonl(self, name: str, rows: list[dict[str, object]]) -> Path:
        return self.write(name, "".join(json.dumps(row) + "\n" for row in rows))

    @property
    def db(self) -> Path:
        return self.state_dir / "stores.sqlite"

    def hasher(self) -> AddressHasher:
        return AddressHasher((self.state_dir / "keys" / "address-hmac.key").read_bytes())

    def dump(self) -> list[str]:
        """Everything in the database, to show that a refused import changed nothing."""
        with sqlite3.connect(self.db) as db:
            return list(db.iterdump())


@pytest.fixture
def operator(tmp_path):
    return Operator(tmp_path)


def test_suppressions_import_then_check(operator):
    path = operator.write("unsubscribes.csv", SUPPRESSIONS_CSV)
    result = operator.run("suppressions", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"imported 3 suppressions from {path}\n"
    key = operator.state_dir / "keys" / "address-hmac.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    found = operator.run("suppressions", "check", "ALICE@example.org", "--sender", "acme")
    assert found.returncode == 0, found.stderr
    entry = json.loads(found.stdout)
    assert entry["scope"] == "sender"
    assert entry["reason"] == "unsubscribe_one_click"
    assert entry["received_at"] == "2024-03-01T12:00:00+00:00"
    assert entry["source"] == "import:unsubscribes.csv"
    assert entry["source_message_id"] == "<m1@acme>"
    assert entry["address_hash"] == operator.hasher().hash("alice@example.org")

    listed = operator.run(
        "suppressions", "check", "bob@example.org", "--sender", "acme", "--list", "news"
    )
    assert listed.returncode == 0
    assert json.loads(listed.stdout)["list_id"] == "news"

    for args in (
        ("bob@example.org", "--sender", "acme", "--list", "offers"),
        ("bob@example.org", "--sender", "acme"),
        ("carol@example.org", "--sender", "acme"),
    ):
        missing = operator.run("suppressions", "check", *args)
        assert (missing.returncode, missing.stdout) == (1, "not suppressed\n")

    again = operator.run("suppressions", "import", str(path))
    assert again.returncode == 0
    assert again.stdout == f"imported 0 suppressions from {path} (3 already present)\n"


def test_several_bad_rows_are_all_reported_and_nothing_is_imported(operator):
    operator.run("suppressions", "import", str(operator.write("first.csv", SUPPRESSIONS_CSV)))
    before = operator.dump()

    path = operator.write(
        "bad.csv",
        "address,sender_id,scope,list_id,reason\n"
        "dave@example.org,acme,,,\n"  # good, but the file is refused as a whole
        "no-at-sign,acme,,,\n"
        "erin@example.org,,,,hard_bounce\n"
        "frank@example.org,acme,sender+list,,\n"
        "gina@example.org,acme,,,spite\n",
    )
    result = operator.run("suppressions", "import", str(path))
    assert result.returncode == 2
    problem_lines = [line for line in result.stderr.splitlines() if line.startswith(f"{path}:")]
    assert [line.split(":")[1] for line in problem_lines] == ["3", "4", "5", "6"]
    assert "no-at-sign" in problem_lines[0]
    assert "sender_id: required" in problem_lines[1]
    assert "needs a list_id" in problem_lines[2]
    assert "reason: Input should be" in problem_lines[3]
    assert result.stdout == ""

    assert operator.dump() == before
    check = operator.run("suppressions", "check", "dave@example.org", "--sender", "acme")
    assert check.returncode == 1


def test_consent_import_and_immutability(operator):
    second = {**CONSENT_ROW, "record_id": "r-2", "scope": ["*"], "jurisdictions": ["EU", "CN"]}
    path = operator.jsonl("consent.jsonl", [CONSENT_ROW, second])
    result = operator.run("consent", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"imported 2 consent records from {path}\n"

    records = run_stores(
        operator.db,
        lambda stores: stores.consents_for("erin@example.org", "acme"),
        hasher=operator.hasher(),
    )
    assert sorted(record.record_id for record in records) == ["r-1", "r-2"]
    assert {record.evidence_ref for record in records} == {"doi-log/2024/03/01/0001"}

    before = operator.dump()
    again = operator.run("consent", "import", str(path))
    assert again.returncode == 1
    assert len(again.stderr.splitlines()) == 1
    assert "immutable" in again.stderr
    assert "r-1, r-2" in again.stderr
    assert operator.dump() == before


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"evidence_ref": ""}, "EU-CONSENT-PROOF"),
        ({"evidence_ref": None}, "EU-CONSENT-PROOF"),
        ({"affirmative_action": False}, "EU-CONSENT-NOT-PRETICKED"),
        ({"affirmative_action": None}, "EU-CONSENT-NOT-PRETICKED"),
        ({"bundled": True}, "EU-CONSENT-NOT-PRETICKED"),
    ],
)
def test_consent_without_proof_or_affirmative_action_is_refused(operator, change, rule):
    good = {**CONSENT_ROW, "record_id": "good"}
    path = operator.jsonl("consent.jsonl", [good, {**CONSENT_ROW, **change}])
    result = operator.run("consent", "import", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}:2: ")
    assert rule in result.stderr.splitlines()[0]
    records = run_stores(
        operator.db,
        lambda stores: stores.consents_for("erin@example.org", "acme"),
        hasher=operator.hasher(),
    )
    assert records == []


def test_consent_csv_with_scope_and_jurisdictions_as_words(operator):
    path = operator.write(
        "consent.csv",
        "record_id,address,sender_id,scope,basis,jurisdictions,obtained_at,source,evidence_ref,"
        "affirmative_action,bundled,product_category\n"
        "c-1,hana@example.org,acme,news offers,soft_optin_customer,EU CN,2024-01-02T03:04:05Z,"
        "checkout ip=192.0.2.9,order-991,true,false,garden tools\n",
    )
    result = operator.run("consent", "import", str(path))
    assert result.returncode == 0, result.stderr
    (record,) = run_stores(
        operator.db,
        lambda stores: stores.consents_for("hana@example.org", "acme"),
        hasher=operator.hasher(),
    )
    assert record.scope == ("news", "offers")
    assert record.jurisdictions == frozenset({"EU", "CN"})
    assert record.product_category == "garden tools"


def test_senders_import_csv_and_jsonl(operator):
    csv_path = operator.write(
        "senders.csv",
        "sender_id,legal_name,postal_address,contact,verified_domains,users\n"
        'acme,Acme Ltd,"1 Road\nTown",privacy@acme.example,'
        "acme.example news.acme.example,acme-app\n",
    )
    result = operator.run("senders", "import", str(csv_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"imported 1 sender profiles from {csv_path}\n"

    jsonl_path = operator.jsonl(
        "senders.data",
        [
            {
                "sender_id": "globex",
                "legal_name": "Globex Corp",
                "postal_address": "3 Avenue",
                "contact": "https://globex.example/contact",
                "verified_domains": ["globex.example"],
                "default_jurisdiction": "US",
                "message_class": "transactional",
                "users": ["globex-billing"],
            }
        ],
    )
    unknown = operator.run("senders", "import", str(jsonl_path))
    assert unknown.returncode == 2
    assert "--format" in unknown.stderr
    result = operator.run("senders", "import", str(jsonl_path), "--format", "jsonl")
    assert result.returncode == 0, result.stderr

    async def lookups(stores):
        return (
            await stores.sender_for_domain("news.acme.example"),
            await stores.sender_for_user("globex-billing"),
        )

    acme, globex = run_stores(operator.db, lookups, hasher=operator.hasher())
    assert acme.postal_address == "1 Road\nTown"
    assert globex.default_jurisdiction == "US"
    assert globex.message_class == "transactional"


def test_sender_domain_held_by_another_sender_is_a_store_error(operator):
    row = (
        "sender_id,legal_name,postal_address,contact,verified_domains\n"
        "{},Name,1 Road,privacy@acme.example,acme.example\n"
    )
    operator.run("senders", "import", str(operator.write("a.csv", row.format("acme"))))
    result = operator.run("senders", "import", str(operator.write("b.csv", row.format("other"))))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert "already belongs to sender 'acme'" in result.stderr


def test_clear_addresses_not_stored_when_keep_addresses_is_off(tmp_path):
    operator = Operator(tmp_path, "[audit]\nkeep_addresses = false\n")
    path = operator.write("unsubscribes.csv", SUPPRESSIONS_CSV)
    assert operator.run("suppressions", "import", str(path)).returncode == 0
    consent_path = operator.jsonl("consent.jsonl", [CONSENT_ROW])
    assert operator.run("consent", "import", str(consent_path)).returncode == 0
    stored = b"".join(file.read_bytes() for file in operator.state_dir.iterdir() if file.is_file())
    for address in ("alice@example.org", "Bob@Example.org", "bob@example.org", "erin@example.org"):
        assert address.encode() not in stored
    check = operator.run("suppressions", "check", "alice@example.org", "--sender", "acme")
    assert json.loads(check.stdout)["address"] is None


def test_an_unusable_database_path_is_a_one_line_store_error(tmp_path):
    unusable = tmp_path / "a-directory"
    unusable.mkdir()
    operator = Operator(tmp_path, f'[stores]\npath = "{unusable}"\n')
    path = operator.write("unsubscribes.csv", SUPPRESSIONS_CSV)
    result = operator.run("suppressions", "import", str(path))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"relay: {unusable}: cannot open the stores")

    check = operator.run("suppressions", "check", "alice@example.org", "--sender", "acme")
    assert check.returncode == 3  # never "1 = not suppressed" when the store cannot answer
    assert check.stdout == ""


def test_a_short_key_file_is_a_configuration_error(operator):
    key = operator.state_dir / "keys" / "address-hmac.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"")
    path = operator.write("unsubscribes.csv", SUPPRESSIONS_CSV)
    result = operator.run("suppressions", "import", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{key}: the address HMAC key is 0 bytes long")
    assert not operator.db.exists()


def test_bad_configuration_exits_2(operator):
    operator.config.write_text("[stores]\ncolour = 1\n")
    path = operator.write("unsubscribes.csv", SUPPRESSIONS_CSV)
    result = operator.run("suppressions", "import", str(path))
    assert result.returncode == 2
    assert "stores.colour: unknown key" in result.stderr
