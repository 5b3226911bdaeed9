"""Keyed hashes of recipient addresses (COMPLIANCE §1.2, §1.3).

The stores key every record by HMAC-SHA256(key, normalised address) so that a copy of the
database does not list who is on it, and an erased address can stay suppressed by its hash. Every
node of a cluster must use the same key: a different key gives different hashes, and the stores
would no longer find what another node wrote.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from relay.errors import ConfigError

__all__ = ["KEY_SIZE", "AddressHasher", "load_or_create_key", "normalise_address"]

KEY_SIZE = 32  # bytes; the HMAC-SHA256 block is longer, the output as long (RFC 2104 §3)


def normalise_address(address: str) -> str:
    """The form that is hashed: surrounding space removed and the whole address lower-cased.
    Dots and +tags are kept: whether they matter is up to the receiving domain, and a
    suppression must not be widened to addresses the recipient did not name."""
    return address.strip().lower()


class AddressHasher:
    """HMAC-SHA256 of normalised addresses under a secret key, as lower-case hex."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_SIZE:
            raise ValueError(f"the address HMAC key must be at least {KEY_SIZE} bytes")
        self._key = key

    def digest(self, address: str) -> bytes:
        message = normalise_address(address).encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hash(self, address: str) -> str:
        return self.digest(address).hex()

    def __repr__(self) -> str:
        return "AddressHasher(<key>)"


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`; on first use, a new random key written there with mode 0600.

    The new key is written to a temporary file, fsync'd and then linked into place, so a crash
    never leaves a partial key and two processes starting together end up with the same key.
    A key file that is shorter than KEY_SIZE bytes (an empty or truncated file) is refused:
    hashing with it would silently make every stored record unreachable.
    """
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the address HMAC key: {exc.strerror}"]) from None
    try:
        _create_key(path)
        return _read_key(path)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot create the address HMAC key: {exc.strerror}"]) from None


def _read_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) < KEY_SIZE:
        raise ConfigError(
            [
                f"{path}: the address HMAC key is {len(key)} bytes long, at least {KEY_SIZE}"
                " are needed; restore the key this node was using (every node must share it)"
                " or remove the file to start with a new key and empty stores"
            ]
        )
    return key


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, secrets.token_bytes(KEY_SIZE))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process was first: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
