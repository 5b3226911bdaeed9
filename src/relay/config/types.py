"""Value types of the configuration: durations, listen addresses, routes, password hashes."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer
from pydantic_settings import NoDecode

__all__ = [
    "Duration",
    "HostPort",
    "HostPortValue",
    "PasswordHash",
    "Rate",
    "RateValue",
    "Route",
    "RouteValue",
]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a string such as "30s", "5m", "2h" or "5d"')
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f'{value!r} is not a duration: use a number and s, m, h or d, e.g. "5m"')
    amount, unit = match.groups()
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])


def _format_duration(value: timedelta) -> str:
    return f"{int(value.total_seconds())}s"


Duration = Annotated[timedelta, BeforeValidator(_parse_duration), PlainSerializer(_format_duration)]


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `amount` messages in any `period` seconds, written "amount/period": "600/1m"."""

    amount: int
    period: int

    def __str__(self) -> str:
        return f"{self.amount}/{self.period}s"


def _parse_rate(value: object) -> Rate:
    if isinstance(value, Rate):
        return value
    amount, slash, period = value.partition("/") if isinstance(value, str) else ("", "", "")
    if not slash or not amount.strip().isdigit() or int(amount) < 1:
        raise ValueError(f'{value!r} is not a rate: use messages/duration, e.g. "600/1m"')
    seconds = int(_parse_duration(period).total_seconds())
    if seconds < 1:
        raise ValueError(f"{value!r}: the period must be at least 1s")
    return Rate(int(amount), seconds)


RateValue = Annotated[Rate, BeforeValidator(_parse_rate), PlainSerializer(str)]


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host (name or IP address) and a port, written "host:port" or "[v6addr]:port"."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _split_host_port(text: str) -> tuple[str, int | None, bool]:
    """Split "host:port", "[host]:port", "[host]" or "host"; say whether brackets were used."""
    text = text.strip()
    bracketed = text.startswith("[")
    if bracketed:
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: unbalanced brackets, expected [host]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None
    if not host:
        raise ValueError(f"{text!r}: host is empty")
    if ":" in host:
        ipaddress.IPv6Address(host)
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: port must be a number from 1 to 65535")
        port = int(port_text)
    return host, port, bracketed


def _parse_host_port(value: object) -> HostPort:
    if isinstance(value, HostPort):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a string "host:port"')
    host, port, _ = _split_host_port(value)
    if port is None:
        raise ValueError(f'{value!r}: port missing, expected "host:port"')
    return HostPort(host, port)


HostPortValue = Annotated[
    HostPort, NoDecode, BeforeValidator(_parse_host_port), PlainSerializer(str)
]


@dataclass(frozen=True, slots=True)
class Route:
    """A transport-map entry (Postfix style): "[host]:port" skips the MX lookup, "host:port"
    looks up the MX records of host. The port defaults to the delivery port."""

    host: str
    port: int | None
    mx_lookup: bool

    def __str__(self) -> str:
        host = f"[{self.host}]" if not self.mx_lookup else self.host
        return f"{host}:{self.port}" if self.port else host


def _parse_route(value: object) -> Route:
    if isinstance(value, Route):
        return value
    if not isinstance(value, str):
        raise ValueError('must be a string such as "[127.0.0.1]:2600" or "mx.example.net"')
    host, port, bracketed = _split_host_port(value)
    return Route(host, port, mx_lookup=not bracketed)


RouteValue = Annotated[Route, NoDecode, BeforeValidator(_parse_route), PlainSerializer(str)]


def _check_password_hash(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("$argon2"):
        raise ValueError(
            "must be an Argon2 hash (\"$argon2id$...\"); create one with 'relay hash-password'"
        )
    return value


PasswordHash = Annotated[str, BeforeValidator(_check_password_hash)]
