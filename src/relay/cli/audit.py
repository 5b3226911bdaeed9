"""`relay audit verify|export`: the compliance officer's view of the audit log."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click

from relay.audit.verify import ExportFormat, export, verify
from relay.cli import config_option, load_settings_or_exit
from relay.errors import AuditError

__all__ = ["audit"]

log_dir_option = click.option(
    "--log-dir",
    "log_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="An audit log directory, e.g. one copied from another node; repeat to name several"
    " (default: the configured audit path).",
)


def _directories(config_path: Path | None, log_dirs: tuple[Path, ...]) -> list[Path]:
    """The --log-dir directories in the order given, each once (a directory named twice would
    export its records twice), or the configured audit path."""
    if log_dirs:
        seen: set[Path] = set()
        directories = []
        for directory in log_dirs:
            if directory.resolve() not in seen:
                seen.add(directory.resolve())
                directories.append(directory)
        return directories
    settings, _ = load_settings_or_exit(config_path)
    return [settings.audit_path]


def _fail(message: str) -> None:
    click.echo(f"relay: {message}", err=True)
    sys.exit(1)


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None


@click.group()
def audit() -> None:
    """The append-only, hash-chained decision log."""


@audit.command("verify")
@config_option
@log_dir_option
def verify_command(config_path: Path | None, log_dirs: tuple[Path, ...]) -> None:
    """Check the chain of each log: exit 0 when all are intact, 1 when any is not, naming the
    first bad record (FILE:LINE) of each broken one."""
    broken = False
    for directory in _directories(config_path, log_dirs):
        try:
            result = verify(directory)
        except AuditError as exc:
            click.echo(f"relay: {exc}", err=True)
            broken = True
            continue
        if result.bad is not None:
            click.echo(str(result.bad), err=True)
            broken = True
            continue
        click.echo(f"audit log OK: {result.records} records in {directory}")
    if broken:
        sys.exit(1)


@audit.command("export")
@config_option
@log_dir_option
@click.option(
    "--since",
    metavar="ISO8601",
    callback=_moment,
    help="First time to include (UTC when no zone is given).",
)
@click.option("--until", metavar="ISO8601", callback=_moment, help="First time to leave out.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File to write (default: standard output).",
)
def export_command(
    config_path: Path | None,
    log_dirs: tuple[Path, ...],
    since: datetime | None,
    until: datetime | None,
    fmt: ExportFormat,
    output: Path | None,
) -> None:
    """Write the records of a time range as CSV or as stored (jsonl); several logs are merged."""
    directories = _directories(config_path, log_dirs)
    try:
        if output is None:
            _export(directories, since, until, fmt, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8", newline="") as out:
                _export(directories, since, until, fmt, out)
    except AuditError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{output or 'standard output'}: cannot write the export: {exc}")


def _export(
    directories: list[Path],
    since: datetime | None,
    until: datetime | None,
    fmt: ExportFormat,
    out: TextIO,
) -> None:
    count = export(directories, since, until, fmt, out)
    click.echo(f"exported {count} records", err=True)
