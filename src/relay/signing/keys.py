"""DKIM private keys: loaded and checked once at start, looked up per signing domain.

`[[dkim.keys]]` lists (domain, selector, private_key, algorithm). Per domain and algorithm the
last key listed is the active one; the earlier ones stay loaded only so that their selectors can
still be shown (rotation: publish the new selector, list it after the old one, restart; mail
signed before keeps its signature, so the old DNS record stays published until the spool has
drained, delivery.max_lifetime).

Refused at load (RFC 8301 §3.2, MBP-DKIM-KEY, RFC-DKIM-ALG): unreadable files, anything but an
unencrypted PEM private key of the configured algorithm, RSA keys under 2048 or over 4096 bits,
key files that group or others may read or write, and one selector listed twice for a domain.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from relay.config.model import DkimSettings
from relay.durable import fsync_directory
from relay.errors import ConfigError

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "Algorithm",
    "GeneratedKey",
    "KeyRing",
    "SigningKey",
    "generate",
    "key_file_name",
    "load_keys",
    "normalise_domain",
    "txt_record_value",
    "zone_file_strings",
]

Algorithm = Literal["rsa-sha256", "ed25519-sha256"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

MIN_RSA_BITS = 2048  # RFC 8301 §3.2 allows 1024; relay refuses less than the SHOULD
MAX_RSA_BITS = 4096  # verifiers need not handle more (RFC 8301 §3.2)
TXT_STRING_MAX = 255  # one <character-string> of a TXT record (RFC 1035 §3.3)

_PKCS1V15 = padding.PKCS1v15()
_PREHASHED_SHA256 = utils.Prehashed(hashes.SHA256())


def normalise_domain(domain: str) -> str:
    """Lower case, no trailing dot, A-labels for internationalised names (the d= form).

    Raises UnicodeError for a name that IDNA cannot encode.
    """
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return domain


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One loaded private key and where it signs: d=domain, s=selector, a=algorithm."""

    domain: str
    selector: str
    algorithm: Algorithm
    private_key: PrivateKey
    path: Path | None = None

    def __post_init__(self) -> None:
        expected = (
            rsa.RSAPrivateKey if self.algorithm == "rsa-sha256" else ed25519.Ed25519PrivateKey
        )
        if not isinstance(self.private_key, expected):
            raise TypeError(f"{self.algorithm} needs a {expected.__name__}")

    @property
    def bits(self) -> int:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.key_size
        return 256

    @property
    def record_name(self) -> str:
        """The DNS name of the public key: SELECTOR._domainkey.DOMAIN (RFC 6376 §3.6.2.1)."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_value(self) -> str:
        """The TXT record to publish at record_name."""
        return txt_record_value(self.private_key)

    def sign_digest(self, digest: bytes) -> bytes:
        """The private-key operation on the SHA-256 digest of the canonicalised header fields:
        RSASSA-PKCS1-v1_5 (RFC 6376 §3.3.1) or Ed25519 over the digest (RFC 8463 §3)."""
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(digest, _PKCS1V15, _PREHASHED_SHA256)
        return self.private_key.sign(digest)


class KeyRing:
    """The loaded keys; per (domain, algorithm) the last one given is active."""

    def __init__(self, keys: Iterable[SigningKey] = ()) -> None:
        self.keys: tuple[SigningKey, ...] = tuple(keys)
        active: dict[tuple[str, Algorithm], SigningKey] = {}
        for key in self.keys:
            active[(key.domain, key.algorithm)] = key
        self._active = active

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(domain for domain, _ in self._active)

    def signing_domain(self, domain: str) -> str | None:
        """The d= relay signs mail From `domain` with: the domain itself when it has a key, else
        its nearest parent with one (aligned under DMARC's relaxed mode, RFC 9989 §4.4, when
        the parent is the organisational domain); None when no key covers it. A bare top-level
        domain never signs."""
        try:
            domain = normalise_domain(domain)
        except UnicodeError:
            return None
        labels = domain.split(".")
        for start in range(len(labels) - 1 if len(labels) > 1 else 1):
            name = ".".join(labels[start:])
            if any((name, algorithm) in self._active for algorithm in ALGORITHMS):
                return name
        return None

    def for_domain(self, domain: str) -> list[SigningKey]:
        """The active keys that sign mail From `domain` (see signing_domain): RSA first, then
        Ed25519 if configured."""
        name = self.signing_domain(domain)
        if name is None:
            return []
        return [key for algorithm in ALGORITHMS if (key := self._active.get((name, algorithm)))]


def load_keys(settings: DkimSettings, source: str) -> KeyRing:
    """Read and check every configured key; all problems at once as `FILE:key: problem`."""
    keys: list[SigningKey] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(settings.keys):
        where = f"{source}:dkim.keys[{index}]"
        try:
            domain = normalise_domain(entry.domain)
        except UnicodeError as exc:
            problems.append(f"{where}.domain: {entry.domain!r} is not a valid domain: {exc}")
            continue
        selector_key = (domain, entry.selector.lower())
        if selector_key in seen:
            problems.append(
                f"{where}.selector: {entry.selector!r} of {domain} is already"
                f" dkim.keys[{seen[selector_key]}] (one DNS record per selector)"
            )
            continue
        seen[selector_key] = index
        try:
            private_key = _read_private_key(entry.private_key, entry.algorithm)
        except _KeyProblem as exc:
            problems.append(f"{where}.private_key: {entry.private_key}: {exc}")
            continue
        keys.append(
            SigningKey(domain, entry.selector, entry.algorithm, private_key, entry.private_key)
        )
    if problems:
        raise ConfigError(problems)
    return KeyRing(keys)


class _KeyProblem(Exception):
    pass


def _read_private_key(path: Path, algorithm: Algorithm) -> PrivateKey:
    try:
        with open(path, "rb") as file:
            info = os.fstat(file.fileno())
            data = file.read()
    except OSError as exc:
        raise _KeyProblem(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _KeyProblem("not a regular file")
    if info.st_mode & 0o077:
        raise _KeyProblem(
            f"mode {stat.S_IMODE(info.st_mode):04o} lets group or others read or write the key;"
            " it must be readable only by relay's user (chmod 600)"
        )
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _KeyProblem("the key is encrypted; relay needs an unencrypted PEM key") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _KeyProblem("not a PEM private key (PKCS#8 or PKCS#1)") from None
    if algorithm == "rsa-sha256":
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise _KeyProblem(f"not an RSA key, but algorithm is {algorithm}")
        if not MIN_RSA_BITS <= private_key.key_size <= MAX_RSA_BITS:
            raise _KeyProblem(
                f"RSA key of {private_key.key_size} bits; relay signs with {MIN_RSA_BITS} to"
                f" {MAX_RSA_BITS} bits (RFC 8301 §3.2)"
            )
        return private_key
    if not isinstance(private_key, ed25519.Ed25519PrivateKey):
        raise _KeyProblem(f"not an Ed25519 key, but algorithm is {algorithm}")
    return private_key


# -- generating keys and their DNS records ------------------------------------------------------


class GeneratedKey(NamedTuple):
    private_key_path: Path
    txt_record_name: str  # SELECTOR._domainkey.DOMAIN, without the final dot
    txt_record_value: str  # v=DKIM1; k=...; p=...


def txt_record_value(private_key: PrivateKey) -> str:
    """The DKIM key record (RFC 6376 §3.6.1): p= is the DER SubjectPublicKeyInfo for RSA, the raw
    32-byte public key for Ed25519 (RFC 8463 §4)."""
    public_key = private_key.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"


def zone_file_strings(value: str) -> list[str]:
    """The record split into TXT character-strings of at most 255 bytes, quoted for a zone file;
    a verifier joins them without separator (RFC 6376 §3.6.2.2)."""
    return [
        f'"{value[start : start + TXT_STRING_MAX]}"'
        for start in range(0, len(value), TXT_STRING_MAX)
    ]


def key_file_name(domain: str, selector: str) -> str:
    return f"{selector}._domainkey.{domain}.pem"


def generate(
    domain: str,
    selector: str,
    directory: Path,
    algorithm: Algorithm = "rsa-sha256",
    bits: int = MIN_RSA_BITS,
) -> GeneratedKey:
    """Create a private key as DIRECTORY/SELECTOR._domainkey.DOMAIN.pem (PKCS#8 PEM, mode 0600,
    directory created 0700) and return it with its TXT record.

    Never overwrites: FileExistsError when the file is there. ValueError for a bad algorithm or
    an RSA size outside 2048..4096 bits.
    """
    domain = normalise_domain(domain)
    if algorithm == "rsa-sha256":
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise ValueError(
                f"RSA keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {bits}"
            )
        private_key: PrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    elif algorithm == "ed25519-sha256":
        private_key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"unknown algorithm {algorithm!r}")
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / key_file_name(domain, selector)
    _write_new_private_file(path, pem)
    return GeneratedKey(path, f"{selector}._domainkey.{domain}", txt_record_value(private_key))


def _write_new_private_file(path: Path, data: bytes) -> None:
    """Write a 0600 temporary file, fsync it, then hard-link it to PATH: the key appears whole or
    not at all, and link() refuses an existing PATH where rename() would replace it."""
    if path.exists():
        raise FileExistsError(f"{path} exists; relay never overwrites a key")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise FileExistsError(f"{path} exists; relay never overwrites a key") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    fsync_directory(path.parent)
