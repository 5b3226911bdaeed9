"""The typed settings model: every key relay reads, with its default (DESIGN §4)."""

from __future__ import annotations

import re
import socket
import ssl
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relay.config.types import (
    Duration,
    HostPort,
    HostPortValue,
    PasswordHash,
    Rate,
    RateValue,
    RouteValue,
)

__all__ = [
    "AuditSettings",
    "DeliverySettings",
    "DkimKey",
    "DkimSettings",
    "DnsSettings",
    "FeedbackSettings",
    "HttpSettings",
    "PolicySettings",
    "RedisSettings",
    "RewriteSettings",
    "SenderLimits",
    "Settings",
    "ShapingEntry",
    "SmtpSettings",
    "SmtpUser",
    "SpoolSettings",
    "StoresSettings",
]

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

_HTTPS_ORIGIN = re.compile(r"^https://([A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?)/?$")
_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpUser(_Section):
    name: Annotated[str, Field(min_length=1)]
    password_hash: PasswordHash


class SmtpSettings(_Section):
    listen: HostPortValue = HostPort("127.0.0.1", 2525)
    hostname: str = Field(default_factory=socket.getfqdn)
    max_message_size: Annotated[int, Field(gt=0)] = 36_700_160
    max_recipients: Annotated[int, Field(ge=1)] = 1000
    trusted_networks: list[IPNetwork] = Field(
        default_factory=lambda: [ip_network("127.0.0.0/8"), ip_network("::1/128")]
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None
    users: list[SmtpUser] = Field(default_factory=list)
    timeout: Duration = timedelta(minutes=5)
    # Several relay nodes on one host accept on the same listen address (SO_REUSEPORT: the
    # kernel spreads the connections): one node per core. Each keeps its own state_dir.
    reuse_port: bool = False

    @field_validator("trusted_networks", mode="before")
    @classmethod
    def _strict_networks(cls, value: object) -> object:
        if isinstance(value, list):
            return [ip_network(v, strict=False) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> SmtpSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        names = [user.name for user in self.users]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate user name(s): {', '.join(duplicates)}")
        return self


class DnsSettings(_Section):
    nameservers: list[HostPortValue] = Field(default_factory=list)
    timeout: Annotated[float, Field(gt=0)] = 5.0
    # How long the policy stage trusts a sender domain's SPF/DKIM/DMARC check (MBP-SPF-PASS,
    # MBP-DKIM-ALIGNED, MBP-DMARC-RECORD); temporary failures are never kept.
    readiness_ttl: Duration = timedelta(minutes=5)

    @field_validator("nameservers")
    @classmethod
    def _addresses_only(cls, servers: list[HostPort]) -> list[HostPort]:
        for server in servers:
            try:
                ip_address(server.host)
            except ValueError:
                raise ValueError(f"{server}: a name server must be an IP address") from None
        return servers


class SenderLimits(_Section):
    """What one sender may use of a destination (unset: only the destination's limits)."""

    max_connections: Annotated[int, Field(ge=1)] | None = None
    rate: list[RateValue] = Field(default_factory=list)


class ShapingEntry(_Section):
    """How hard relay may push one destination (relay.delivery.shaping): "default", a provider
    (an entry with mx_suffixes) or a domain. Unset keys come from "default"."""

    mx_suffixes: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$")]] | None = None
    max_connections: Annotated[int, Field(ge=1)] | None = None
    messages_per_connection: Annotated[int, Field(ge=1)] | None = None
    rate: list[RateValue] | None = None  # e.g. ["600/1m", "20000/1h"]
    connect_timeout: Duration | None = None
    command_timeout: Duration | None = None
    per_sender: SenderLimits | None = None

    @field_validator("mx_suffixes")
    @classmethod
    def _lowercase_suffixes(cls, suffixes: list[str] | None) -> list[str] | None:
        return None if suffixes is None else [s.lower().strip(".") for s in suffixes]


class DeliverySettings(_Section):
    routes: dict[str, RouteValue] = Field(default_factory=dict)
    retry_schedule: Annotated[list[Duration], Field(min_length=1)] = Field(
        default_factory=lambda: [
            timedelta(minutes=1),
            timedelta(minutes=5),
            timedelta(minutes=30),
            timedelta(hours=2),
        ]
    )
    # Each retry interval is stretched or shortened at random by up to this fraction, so that
    # mail deferred together does not come back together.
    retry_jitter: Annotated[float, Field(ge=0, le=0.5)] = 0.2
    max_lifetime: Duration = timedelta(days=5)
    helo_name: str = Field(default_factory=socket.getfqdn)
    port: Annotated[int, Field(gt=0, lt=65536)] = 25
    max_deliveries: Annotated[int, Field(ge=1)] = 100
    idle_connection_timeout: Duration = timedelta(seconds=5)
    # Per destination limits over the shipped config/shaping.toml, entry by entry and key by key.
    shaping: dict[str, ShapingEntry] = Field(default_factory=dict)
    # The reply -> backoff table; default: config/backoff.toml shipped with relay.
    backoff_file: Path | None = None
    # The addresses receivers see relay's mail come from (SPF must authorise them; relay
    # dns-check and MBP-SPF-PASS evaluate the envelope domain's SPF against each).
    egress_addresses: list[IPAddress] = Field(default_factory=list)
    # Per destination domain ("*": every other one): "required" means no delivery without
    # STARTTLS and a certificate valid for the host's name; "opportunistic" (the default) means
    # STARTTLS whenever offered, certificate unchecked. MTA-STS `enforce` policies apply too.
    tls: dict[str, Literal["opportunistic", "required"]] = Field(default_factory=dict)
    # PEM file of the CAs that verify certificates (MTA-STS, tls = "required"); default: the
    # system's trust store.
    ca_file: Path | None = None
    # Port of the MTA-STS policy servers (https://mta-sts.<domain>/); 443 except in tests.
    mta_sts_port: Annotated[int, Field(gt=0, lt=65536)] = 443

    @field_validator("routes", "tls", "shaping")
    @classmethod
    def _lowercase_domains(cls, by_domain: dict[str, object]) -> dict[str, object]:
        return {domain.lower().rstrip("."): value for domain, value in by_domain.items()}

    @field_validator("ca_file")
    @classmethod
    def _readable_cas(cls, path: Path | None) -> Path | None:
        if path is not None:
            try:
                ssl.create_default_context(cafile=path)
            except (OSError, ssl.SSLError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise ValueError(f"{path}: not a readable PEM file of CAs: {reason}") from None
        return path

    @field_validator("egress_addresses", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        addresses: list[object] = []
        for item in value:
            if isinstance(item, str):
                try:
                    item = ip_address(item)
                except ValueError:
                    raise ValueError(f"{item!r} is not an IPv4 or IPv6 address") from None
            addresses.append(item)
        return addresses

    @field_validator("retry_schedule")
    @classmethod
    def _positive_intervals(cls, schedule: list[timedelta]) -> list[timedelta]:
        if any(interval.total_seconds() <= 0 for interval in schedule):
            raise ValueError("every retry interval must be longer than 0s")
        return schedule


class SpoolSettings(_Section):
    path: Path | None = None


class FeedbackSettings(_Section):
    """The feedback listener (bounces, complaint reports, mailto unsubscribes) and the
    suppression policy it applies (relay.feedback)."""

    listen: HostPortValue = HostPort("127.0.0.1", 2526)
    max_message_size: Annotated[int, Field(gt=0)] = 10 * 1024 * 1024
    # Mailboxes that receive complaint reports (feedback loops), e.g. fbl@relay.example.com.
    complaint_addresses: list[str] = Field(default_factory=list)
    # Soft bounces of one recipient that suppress it when `soft_bounce_limit` arrive within
    # `soft_bounce_window`.
    soft_bounce_limit: Annotated[int, Field(ge=1)] = 3
    soft_bounce_window: Duration = timedelta(days=7)
    # Feedback types (RFC 5965 §7.3) that suppress the recipient and count as complaints.
    complaint_types: list[str] = Field(default_factory=lambda: ["abuse", "fraud"])

    @field_validator("complaint_addresses")
    @classmethod
    def _addresses(cls, addresses: list[str]) -> list[str]:
        normalised: list[str] = []
        for address in addresses:
            local, at, domain = address.strip().rpartition("@")
            domain = domain.rstrip(".").lower()
            if not at or not local or not _DOMAIN.match(domain):
                raise ValueError(f"{address!r} is not an e-mail address")
            normalised.append(f"{local.lower()}@{domain}")
        return normalised

    @field_validator("complaint_types")
    @classmethod
    def _feedback_types(cls, types: list[str]) -> list[str]:
        for feedback_type in types:
            if not re.fullmatch(r"[A-Za-z0-9-]+", feedback_type):
                raise ValueError(f"{feedback_type!r} is not a feedback type (e.g. abuse)")
        return [feedback_type.lower() for feedback_type in types]

    @field_validator("soft_bounce_window")
    @classmethod
    def _positive_window(cls, window: timedelta) -> timedelta:
        if window.total_seconds() <= 0:
            raise ValueError("the window must be longer than 0s")
        return window


class HttpSettings(_Section):
    listen: HostPortValue = HostPort("127.0.0.1", 8025)
    # Failed admin API authentications a client address may make in a moving window; past it
    # the client is answered 429 until the window has room again.
    failed_auth_limit: RateValue = Rate(10, 60)
    # Octets an import body (suppressions, consent records) may have; larger ones get 413.
    max_import_size: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024


class PolicySettings(_Section):
    # Policy files to load; default: every *.toml in the policies/ folder shipped with relay.
    files: list[Path] | None = None


class StoresSettings(_Section):
    # "sqlite": one file on this node; "redis": shared by every node through [redis] (the
    # list-health figures stay in the SQLite file at `path` on each node either way).
    backend: Literal["sqlite", "redis"] = "sqlite"
    path: Path | None = None  # default: state_dir/stores.sqlite
    # Key for the address HMAC; default: state_dir/keys/address-hmac.key, created on first use.
    # Every node of a cluster must use the same key.
    hmac_key_file: Path | None = None


class RedisSettings(_Section):
    """Where the Redis backend of the stores lives ([stores] backend = "redis")."""

    # redis://[user[:password]@]host[:port][/db] or rediss://... for TLS (the server's
    # certificate is verified against the system's CAs).
    url: str = "redis://127.0.0.1:6379/0"
    # A file holding the password (its first line), instead of a password in the URL.
    password_file: Path | None = None
    # Every key starts with this: several deployments may share one Redis.
    key_prefix: Annotated[str, Field(min_length=1, max_length=64)] = "relay:"
    # Seconds one command may take; RCPT waits on lookups, so keep it short. A lookup that
    # takes longer answers 451 4.3.0 (never fail open).
    timeout: Annotated[float, Field(gt=0, le=30)] = 0.5
    connect_timeout: Annotated[float, Field(gt=0, le=60)] = 2.0

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("redis", "rediss"):
            raise ValueError(f"{url!r}: use redis://host[:port][/db] or rediss://... for TLS")
        hostpart = rest.split("/", 1)[0].rpartition("@")[2]
        if not hostpart:
            raise ValueError(f"{url!r}: no host")
        return url

    @model_validator(mode="after")
    def _one_password(self) -> RedisSettings:
        userinfo = self.url.partition("://")[2].split("/", 1)[0].rpartition("@")[0]
        if self.password_file is not None and ":" in userinfo:
            raise ValueError("give the password in the url or in password_file, not both")
        return self


class AuditSettings(_Section):
    path: Path | None = None  # default: state_dir/audit
    keep_addresses: bool = True  # store clear addresses beside their keyed hashes


class RewriteSettings(_Section):
    # relay's public HTTPS endpoint, `https://host[:port]`; the one-click unsubscribe URI of a
    # fixed message is `<base>/u/<token>`. Default: https://<smtp.hostname>.
    unsubscribe_base_url: str | None = None
    # Domain of the relay-hosted mailto: unsubscribe address. Default: smtp.hostname.
    unsubscribe_mailto_domain: str | None = None
    # Key of the unsubscribe tokens' HMAC; default: state_dir/keys/unsubscribe-token.key,
    # created on first use. Every node of a cluster must use the same key.
    token_key_file: Path | None = None

    @field_validator("unsubscribe_base_url")
    @classmethod
    def _https_origin(cls, url: str | None) -> str | None:
        if url is None:
            return None
        match = _HTTPS_ORIGIN.match(url)
        if match is None:
            raise ValueError(
                f"{url!r}: give an https URL without a path, e.g. https://relay.example"
            )
        return f"https://{match.group(1).lower()}"

    @field_validator("unsubscribe_mailto_domain")
    @classmethod
    def _mailto_domain(cls, domain: str | None) -> str | None:
        if domain is None:
            return None
        domain = domain.strip().rstrip(".").lower()
        if not _DOMAIN.match(domain):
            raise ValueError(f"{domain!r} is not a domain name")
        return domain


class DkimKey(_Section):
    domain: Annotated[str, Field(min_length=1)]
    selector: Annotated[str, Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")]
    private_key: Path  # PEM (PKCS#8 or PKCS#1 for RSA), readable only by relay's user
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"

    @field_validator("domain")
    @classmethod
    def _lowercase(cls, domain: str) -> str:
        return domain.lower().rstrip(".")


class DkimSettings(_Section):
    # Per domain and algorithm, the last key listed signs; list a new selector after the old
    # one to rotate (mail already spooled keeps the signature it was accepted with).
    keys: list[DkimKey] = Field(default_factory=list)


class Settings(_Section):
    state_dir: Path = Path("var")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    stores: StoresSettings = Field(default_factory=StoresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    dkim: DkimSettings = Field(default_factory=DkimSettings)
    rewrite: RewriteSettings = Field(default_factory=RewriteSettings)

    @property
    def spool_path(self) -> Path:
        return self.spool.path if self.spool.path is not None else self.state_dir / "spool"

    @property
    def feedback_path(self) -> Path:
        """The feedback listener's inbox."""
        return self.state_dir / "feedback"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def stores_path(self) -> Path:
        return self.stores.path or self.state_dir / "stores.sqlite"

    @property
    def hmac_key_path(self) -> Path:
        return self.stores.hmac_key_file or self.state_dir / "keys" / "address-hmac.key"

    @property
    def audit_path(self) -> Path:
        return self.audit.path or self.state_dir / "audit"

    @property
    def unsubscribe_token_key_path(self) -> Path:
        return self.rewrite.token_key_file or self.state_dir / "keys" / "unsubscribe-token.key"

    @property
    def unsubscribe_host(self) -> str:
        """host[:port] of the one-click unsubscribe URIs."""
        base = self.rewrite.unsubscribe_base_url or f"https://{self.smtp.hostname}"
        return base.removeprefix("https://")

    @property
    def unsubscribe_mailto_domain(self) -> str:
        return self.rewrite.unsubscribe_mailto_domain or self.smtp.hostname
