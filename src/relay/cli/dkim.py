"""`relay dkim keygen`: a new DKIM key, the [[dkim.keys]] entry to add and the TXT record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

import click
from pydantic import ValidationError

from relay.cli import CONFIG_ERROR_EXIT, config_option, load_settings_or_exit
from relay.config.model import DkimKey
from relay.signing.keys import (
    ALGORITHMS,
    MAX_RSA_BITS,
    MIN_RSA_BITS,
    Algorithm,
    generate,
    normalise_domain,
    zone_file_strings,
)

__all__ = ["dkim"]


@click.group()
def dkim() -> None:
    """DKIM keys: generate a key and the DNS record to publish for it."""


@dkim.command("keygen")
@click.argument("domain")
@click.argument("selector")
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default="rsa-sha256",
    show_default=True,
    help="ed25519-sha256 only as a second signature beside an RSA key, under its own selector.",
)
@click.option(
    "--bits",
    type=int,
    default=MIN_RSA_BITS,
    show_default=True,
    help=f"RSA key size, {MIN_RSA_BITS} to {MAX_RSA_BITS} (RFC 8301 §3.2).",
)
@click.option(
    "--directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where to write the key (default: <state_dir>/dkim, created 0700).",
)
@config_option
def keygen_command(
    domain: str,
    selector: str,
    algorithm: str,
    bits: int,
    directory: Path | None,
    config_path: Path | None,
) -> None:
    """Write a private key for DOMAIN and SELECTOR (mode 0600, never over an existing file) and
    print the [[dkim.keys]] entry and the DNS TXT record to publish before using it."""
    chosen = cast(Algorithm, algorithm)
    if chosen == "rsa-sha256" and not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
        click.echo(
            f"relay: --bits {bits}: RSA DKIM keys must have {MIN_RSA_BITS} to {MAX_RSA_BITS}"
            " bits (RFC 8301 §3.2: keys under 2048 bits are weak and refused by relay)",
            err=True,
        )
        sys.exit(CONFIG_ERROR_EXIT)
    try:
        DkimKey(domain=domain, selector=selector, private_key=Path("-"), algorithm=chosen)
        domain = normalise_domain(domain)
    except ValidationError as exc:
        for error in exc.errors():
            click.echo(f"relay: {error['loc'][0]}: {error['msg']}", err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    except UnicodeError as exc:
        click.echo(f"relay: {domain!r} is not a domain name: {exc}", err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    if directory is None:
        settings, _ = load_settings_or_exit(config_path)
        directory = settings.state_dir / "dkim"
    try:
        path, name, value = generate(domain, selector, directory, chosen, bits)
    except OSError as exc:
        click.echo(f"relay: {exc}", err=True)
        sys.exit(1)
    click.echo(f"Wrote {path} (mode 0600). Add to the configuration:\n")
    click.echo("[[dkim.keys]]")
    click.echo(f'domain = "{domain}"')
    click.echo(f'selector = "{selector}"')
    click.echo(f"private_key = {_toml_string(str(path.resolve()))}")
    click.echo(f'algorithm = "{algorithm}"')
    click.echo("\nand publish this record before relay signs with the key:\n")
    click.echo(f"{name}. IN TXT ( {' '.join(zone_file_strings(value))} )")


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
