"""The `relay` command line."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from relay import __version__
from relay.config import Settings, load_settings
from relay.delivery.backoff import BackoffTable
from relay.delivery.shaping import Shaping
from relay.errors import AuditError, ConfigError, SpoolError, StoreUnavailable
from relay.ingest.auth import hash_password
from relay.ingest.tls import listener_context
from relay.node import ListenError, serve
from relay.policy.files import load_policies, policy_paths
from relay.signing.keys import load_keys

__all__ = ["CONFIG_ERROR_EXIT", "config_option", "load_settings_or_exit", "main"]

CONFIG_ERROR_EXIT = 2

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML configuration file (default: the embedded defaults). RELAY_* variables override.",
)


def load_settings_or_exit(config_path: Path | None) -> tuple[Settings, str]:
    """The settings, or the `FILE:key: problem` lines on stderr and exit status 2."""
    try:
        return load_settings(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(CONFIG_ERROR_EXIT)


@click.group()
@click.version_option(__version__, prog_name="relay")
def main() -> None:
    """relay: deliverability and compliance gateway for outbound mail."""


@main.command("serve")
@config_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def serve_command(config_path: Path | None, log_level: str) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    settings, source = load_settings_or_exit(config_path)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(settings, source))
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    except (ListenError, SpoolError, StoreUnavailable, AuditError) as exc:
        click.echo(f"relay: {exc}", err=True)
        sys.exit(1)


@main.command("check-config")
@config_option
def check_config_command(config_path: Path | None) -> None:
    """Validate the configuration and exit: 0 when usable, 2 with FILE:key: problem lines."""
    settings, source = load_settings_or_exit(config_path)
    try:
        listener_context(settings, source, generate=False)
        load_policies(policy_paths(settings.policy.files))
        load_keys(settings.dkim, source)
        Shaping(settings.delivery.shaping, source)
        BackoffTable.load(settings.delivery.backoff_file)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    click.echo(f"{source}: configuration OK")


@main.command("hash-password")
@click.password_option(prompt="Password", help="Read from the terminal when not given.")
def hash_password_command(password: str) -> None:
    """Print an Argon2 hash for [[smtp.users]] password_hash."""
    click.echo(hash_password(password))


def _register_groups() -> None:
    from relay.cli.audit import audit
    from relay.cli.bounces import bounces
    from relay.cli.complaints import complaints
    from relay.cli.dkim import dkim
    from relay.cli.dnscheck import dns_check
    from relay.cli.policy import policy
    from relay.cli.queue import queue
    from relay.cli.stats import stats
    from relay.cli.stores import consent, senders, suppressions
    from relay.cli.tokens import tokens

    for group in (
        policy,
        suppressions,
        consent,
        senders,
        audit,
        dkim,
        dns_check,
        bounces,
        complaints,
        stats,
        queue,
        tokens,
    ):
        main.add_command(group)


_register_groups()
