"""The `relay` command line.

A command imports what it runs when it runs: `relay serve` needs the whole node (the API, the
delivery stack: about 0.6 s of imports), the store and audit commands that scripts call often
need a fraction of it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from relay import __version__
from relay.config import Settings, load_settings
from relay.errors import AuditError, ConfigError, SpoolError, StoreUnavailable

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


class _LazyGroup(click.Group):
    """The command groups of _GROUPS, each imported when asked for (click's documented way
    to load subcommands lazily)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *_GROUPS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _GROUPS:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = _GROUPS[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=_LazyGroup)
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
    import uvloop

    from relay.node import ListenError, serve

    settings, source = load_settings_or_exit(config_path)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        uvloop.run(serve(settings, source))
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
    from relay.delivery.backoff import BackoffTable
    from relay.delivery.shaping import Shaping
    from relay.ingest.tls import listener_context
    from relay.policy.files import load_policies, policy_paths
    from relay.signing.keys import load_keys

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
    from relay.ingest.auth import hash_password

    click.echo(hash_password(password))


# Command groups by name: "module:attribute", imported when the command runs.
_GROUPS = {
    "policy": "relay.cli.policy:policy",
    "suppressions": "relay.cli.stores:suppressions",
    "consent": "relay.cli.stores:consent",
    "senders": "relay.cli.stores:senders",
    "audit": "relay.cli.audit:audit",
    "dkim": "relay.cli.dkim:dkim",
    "dns-check": "relay.cli.dnscheck:dns_check",
    "bounces": "relay.cli.bounces:bounces",
    "complaints": "relay.cli.complaints:complaints",
    "stats": "relay.cli.stats:stats",
    "queue": "relay.cli.queue:queue",
    "tokens": "relay.cli.tokens:tokens",
}
