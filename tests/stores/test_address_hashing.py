"""Keyed address hashes: normalisation, key separation, the key file, and no clear addresses in
the database when keep_addresses is off."""

from __future__ import annotations

import stat

import pytest

from relay.errors import ConfigError
from relay.stores.hashing import KEY_SIZE, AddressHasher, load_or_create_key
from tests.stores.helpers import HASHER, consent, run_stores, suppression

ADDRESS = "Secret.Person+promo@Example.ORG"


def test_case_and_surrounding_space_do_not_change_the_hash():
    assert HASHER.hash(ADDRESS) == HASHER.hash("  secret.person+PROMO@example.org\n")
    assert len(HASHER.hash(ADDRESS)) == 64


def test_dots_and_tags_are_kept():
    assert HASHER.hash("a.b@example.org") != HASHER.hash("ab@example.org")
    assert HASHER.hash("ab+x@example.org") != HASHER.hash("ab@example.org")


def test_different_keys_give_different_hashes():
    other = AddressHasher(b"\xff" * KEY_SIZE)
    assert other.hash(ADDRESS) != HASHER.hash(ADDRESS)


def test_a_short_key_is_refused():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AddressHasher(b"short")


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "keys" / "address-hmac.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_SIZE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    assert load_or_create_key(tmp_path / "another.key") != key


@pytest.mark.parametrize("content", [b"", b"0123456789"])
def test_an_empty_or_short_key_file_is_refused(tmp_path, content):
    path = tmp_path / "address-hmac.key"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"{path}: the address HMAC key is {len(content)} bytes"):
        load_or_create_key(path)
    assert path.read_bytes() == content  # never replaced: other nodes may share the old key


def test_database_holds_no_clear_address_when_keep_addresses_is_off(tmp_path):
    path = tmp_path / "stores.sqlite"

    async def write(stores):
        await stores.add_suppressions([suppression(ADDRESS)])
        await stores.add_consents([consent("r-1", ADDRESS)])
        return (
            await stores.suppression_for(ADDRESS, "acme", None),
            await stores.consents_for(ADDRESS, "acme"),
        )

    entry, records = run_stores(path, write, keep_addresses=False)
    assert entry is not None
    assert entry.address is None
    assert [record.address for record in records] == [None]
    stored = b"".join(file.read_bytes() for file in tmp_path.iterdir())
    for form in (ADDRESS, ADDRESS.lower(), "Secret.Person", "secret.person"):
        assert form.encode() not in stored
    assert bytes.fromhex(HASHER.hash(ADDRESS)) in stored  # the keyed hash is what is kept


def test_database_holds_the_clear_address_when_keep_addresses_is_on(tmp_path):
    path = tmp_path / "stores.sqlite"
    run_stores(path, lambda stores: stores.add_suppressions([suppression(ADDRESS)]))
    stored = b"".join(file.read_bytes() for file in tmp_path.iterdir())
    assert ADDRESS.encode() in stored
