"""`relay dns-check DOMAIN`: is DNS ready for relay to send as DOMAIN?"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from relay.cli import CONFIG_ERROR_EXIT, config_option, load_settings_or_exit
from relay.errors import ConfigError
from relay.signing.keys import load_keys, normalise_domain

__all__ = ["dns_check", "exit_status"]

NOT_READY_EXIT = 1
TEMPORARY_EXIT = 3


@click.command("dns-check")
@click.argument("domain")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every check.")
@click.option(
    "--verp-domain",
    default=None,
    help="The envelope (MAIL FROM / VERP) domain, when it is not DOMAIN: its SPF and MX are"
    " checked, and its alignment with DOMAIN.",
)
@config_option
def dns_check(
    domain: str, as_json: bool, verp_domain: str | None, config_path: Path | None
) -> None:
    """Check DOMAIN's DNS for sending through relay: MX (not a null MX), SPF authorising
    [delivery] egress_addresses, the DKIM key records of [[dkim.keys]], a DMARC record, and
    alignment of the DKIM d= and the envelope domain with DOMAIN.

    Exit status: 0 ready, 1 something fails or is missing, 2 configuration error, 3 only
    temporary DNS failures (try again)."""
    from relay.dnscheck import check_domain  # checkdmarc is imported only for this command

    settings, source = load_settings_or_exit(config_path)
    try:
        keyring = load_keys(settings.dkim, source)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    try:
        domain = normalise_domain(domain)
        verp_domain = normalise_domain(verp_domain) if verp_domain else None
    except UnicodeError as exc:
        click.echo(f"relay: not a domain name: {exc}", err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    readiness = asyncio.run(
        check_domain(
            domain,
            dns=settings.dns,
            keyring=keyring,
            egress=settings.delivery.egress_addresses,
            verp_domain=verp_domain,
        )
    )
    if as_json:
        click.echo(json.dumps(readiness.to_dict(), indent=2))
    else:
        width = max(len(check.name) for check in readiness.checks)
        for check in readiness.checks:
            click.echo(f"{check.status.upper():<9}  {check.name:<{width}}  {check.detail}")
            for warning in check.warnings:
                click.echo(f"{'':<9}  {'':<{width}}  note: {warning}")
        verdict = {
            "pass": "ready",
            "unknown": "ready as far as relay can tell",
            "temperror": "DNS failed temporarily; try again",
        }.get(readiness.status, "not ready")
        click.echo(f"{readiness.domain}: {verdict}")
    sys.exit(exit_status(readiness.status))


def exit_status(status: str) -> int:
    if status in ("fail", "missing"):
        return NOT_READY_EXIT
    if status == "temperror":
        return TEMPORARY_EXIT
    return 0
