"""TLS for the listeners: load the configured certificate or generate a self-signed pair."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from relay.config.model import Settings
from relay.errors import ConfigError

__all__ = ["ensure_self_signed", "listener_context", "server_context"]


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for STARTTLS; raises OSError or ssl.SSLError when the files are bad."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def ensure_self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Return (cert, key) under directory, generating a self-signed pair if none exists."""
    cert_path, key_path = directory / "selfsigned.crt", directory / "selfsigned.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def listener_context(settings: Settings, source: str, *, generate: bool) -> ssl.SSLContext | None:
    """The STARTTLS context of the submission listener: the configured pair, else (when
    `generate`) a self-signed pair under the state directory. Bad files are a ConfigError."""
    cert, key = settings.smtp.tls_cert, settings.smtp.tls_key
    if cert is None or key is None:
        if not generate:
            return None
        try:
            cert, key = ensure_self_signed(settings.tls_dir, settings.smtp.hostname)
        except OSError as exc:
            raise ConfigError(
                [
                    f"{source}:state_dir: cannot create a TLS certificate in"
                    f" {settings.tls_dir}: {exc}"
                ]
            ) from None
    try:
        return server_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            [f"{source}:smtp.tls_cert: cannot load certificate {cert} with key {key}: {reason}"]
        ) from None
