"""`relay policy list`: what the loaded policy files enforce, for whom and why."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from relay.cli import CONFIG_ERROR_EXIT, config_option, load_settings_or_exit
from relay.errors import ConfigError
from relay.policy.files import load_policies, policy_paths
from relay.policy.rules import RULES

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """Policy files: which rules run, with what action, citation and reply."""


@policy.command("list")
@config_option
def list_command(config_path: Path | None) -> None:
    """Print every policy file and its rules: id, stage, action, citation."""
    settings, _ = load_settings_or_exit(config_path)
    try:
        policies = load_policies(policy_paths(settings.policy.files))
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(CONFIG_ERROR_EXIT)
    for loaded in policies:
        scope = f"recipients in {loaded.jurisdiction}" if loaded.jurisdiction else "every recipient"
        click.echo(f"{loaded.path}: {loaded.name} ({scope})")
        for binding in loaded.bindings:
            stage = RULES[binding.rule_id].stage.value
            reply = f"  [{binding.reply.code} {binding.reply.status}]" if binding.reply else ""
            click.echo(
                f"  {binding.rule_id:<24} {stage:<4} {binding.action.value:<6} "
                f"{binding.citation}{reply}"
            )
