"""The one module that calls checkdmarc: its SPF and DMARC record parsers, run on the record
strings relay already fetched, with `[dns] nameservers` (ports included) for the few lookups
the parsers make themselves (SPF include/a/mx targets, DMARC report destinations).

checkdmarc is synchronous, so its calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import checkdmarc.dmarc
import checkdmarc.spf
import dns.exception

from relay.config.model import DnsSettings
from relay.dnsresolver import nameservers

__all__ = ["DmarcTags", "parse_dmarc", "validate_spf"]

# checkdmarc logs a warning for each name server that fails to answer; relay reports those as
# temperror itself, so keep them off stderr unless the application configured logging.
logging.getLogger("checkdmarc").addHandler(logging.NullHandler())

DmarcTags = dict[str, tuple[str, bool]]  # tag -> (value, given explicitly)


def _dns_arguments(dns_settings: DnsSettings) -> dict[str, Any]:
    # checkdmarc passes dnspython Nameserver objects through to its resolver, so a server on any
    # port works; None means the system's resolvers, as for relay.
    return {
        "nameservers": nameservers(dns_settings) or None,
        "timeout": dns_settings.timeout,
    }


async def validate_spf(
    record: str, domain: str, dns_settings: DnsSettings
) -> tuple[str | None, tuple[str, ...]]:
    """checkdmarc's verdict on an SPF record: (the error that makes receivers return permerror,
    or None; advice). A missing include target is left to relay's own evaluation, which can tell
    it from a temporary failure."""

    def parse() -> tuple[str | None, tuple[str, ...]]:
        try:
            result = checkdmarc.spf.parse_spf_record(record, domain, **_dns_arguments(dns_settings))
        except checkdmarc.spf.SPFRecordNotFound:
            return None, ()
        except checkdmarc.spf.SPFError as exc:
            return str(exc), tuple(getattr(exc, "warnings", ()))
        except (dns.exception.DNSException, OSError) as exc:
            # Advice only: relay's own evaluation has already judged the record.
            return None, (f"checkdmarc could not check the record: {exc}",)
        return None, tuple(str(warning) for warning in result.get("warnings", ()))

    return await asyncio.to_thread(parse)


async def parse_dmarc(
    record: str, domain: str, dns_settings: DnsSettings
) -> tuple[DmarcTags | None, str | None, tuple[str, ...]]:
    """checkdmarc's reading of a DMARC record found at _dmarc.DOMAIN: (tags, or None when the
    record is invalid; the error; advice, including report destinations that do not accept
    reports)."""

    def parse() -> tuple[DmarcTags | None, str | None, tuple[str, ...]]:
        try:
            result = checkdmarc.dmarc.parse_dmarc_record(
                record, domain, **_dns_arguments(dns_settings)
            )
        except checkdmarc.dmarc.DMARCError as exc:
            return None, str(exc), ()
        tags: DmarcTags = {
            str(name): (str(tag["value"]), bool(tag["explicit"]))
            for name, tag in result["tags"].items()
            if isinstance(tag["value"], str)
        }
        return tags, None, tuple(str(warning) for warning in result.get("warnings", ()))

    return await asyncio.to_thread(parse)
