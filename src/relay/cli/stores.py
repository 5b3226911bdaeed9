"""`relay suppressions|consent|senders ...`: manage the stores from the command line.

Exit codes: 0 done; 2 bad configuration or a bad import file (nothing imported; one
`FILE:LINE: problem` line per problem on stderr); 1 the store refused or could not be written.
`relay suppressions check` exits 0 when the address is suppressed, 1 when it is not and 3 when
the store could not be asked, so that a script never reads "store down" as "not suppressed".
`relay senders pause|resume` exit 0 also when the sender already was paused (resumed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import click

from relay.audit.log import AuditLog
from relay.cli import CONFIG_ERROR_EXIT, config_option, load_settings_or_exit
from relay.config import Settings
from relay.errors import AuditError, ConfigError, ImportRowError, StoreConflict, StoreUnavailable
from relay.policy.standing import record_changes
from relay.stores.backends import make_stores
from relay.stores.base import Stores
from relay.stores.hashing import AddressHasher, load_or_create_key
from relay.stores.importing import ImportFormat, read_consents, read_senders, read_suppressions
from relay.stores.models import PauseAction, PauseChange

__all__ = ["consent", "hasher_or_exit", "senders", "suppressions", "with_stores"]

STORE_ERROR_EXIT = 1
NOT_SUPPRESSED_EXIT = 1
CHECK_STORE_ERROR_EXIT = 3

T = TypeVar("T")

import_file = click.argument(
    "file", type=click.Path(path_type=Path, exists=True, dir_okay=False, readable=True)
)
format_option = click.option(
    "--format",
    "file_format",
    type=click.Choice([kind.value for kind in ImportFormat]),
    default=None,
    help="File format (default: from the extension: .csv, .jsonl or .ndjson).",
)


@click.group()
def suppressions() -> None:
    """Suppression list: addresses that must not be mailed."""


@click.group()
def consent() -> None:
    """Consent records: the proof that a recipient agreed to receive a sender's mail."""


@click.group()
def senders() -> None:
    """Sender profiles: verified From domains, legal identity, default jurisdiction."""


# -- helpers -----------------------------------------------------------------------------------


def hasher_or_exit(settings: Settings) -> AddressHasher:
    try:
        return AddressHasher(load_or_create_key(settings.hmac_key_path))
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        sys.exit(CONFIG_ERROR_EXIT)


def _parse(read: Callable[[], Sequence[T]]) -> Sequence[T]:
    try:
        return read()
    except ImportRowError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo("nothing imported", err=True)
        sys.exit(CONFIG_ERROR_EXIT)


def with_stores(
    settings: Settings,
    hasher: AddressHasher,
    action: Callable[[Stores], Awaitable[T]],
    error_exit: int = STORE_ERROR_EXIT,
) -> T:
    """Run `action` on the opened stores; a store error is one line on stderr and an exit."""

    async def run() -> T:
        stores = make_stores(settings, hasher)
        await stores.open()
        try:
            return await action(stores)
        finally:
            await stores.close()

    try:
        return asyncio.run(run())
    except (StoreUnavailable, StoreConflict) as exc:
        click.echo(f"relay: {exc}", err=True)
        sys.exit(error_exit)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _as_json(record: Any) -> str:
    fields = {
        field.name: _json_value(getattr(record, field.name)) for field in dataclasses.fields(record)
    }
    return json.dumps(fields, ensure_ascii=False)


# -- commands ----------------------------------------------------------------------------------


@suppressions.command("import")
@import_file
@format_option
@config_option
def import_suppressions(file: Path, file_format: str | None, config_path: Path | None) -> None:
    """Add the suppression entries of a CSV or JSON Lines FILE (all or nothing)."""
    settings, _ = load_settings_or_exit(config_path)
    hasher = hasher_or_exit(settings)
    entries = _parse(lambda: read_suppressions(file, hasher, file_format=file_format))
    added = with_stores(settings, hasher, lambda stores: stores.add_suppressions(entries))
    present = len(entries) - added
    note = f" ({present} already present)" if present else ""
    click.echo(f"imported {added} suppressions from {file}{note}")


@suppressions.command("check")
@click.argument("address")
@click.option("--sender", "sender_id", required=True, help="The sender id to check for.")
@click.option("--list", "list_id", default=None, help="The list id of the mail, if any.")
@config_option
def check_suppression(
    address: str, sender_id: str, list_id: str | None, config_path: Path | None
) -> None:
    """Print the entry that suppresses mail of SENDER (list LIST) to ADDRESS, as JSON.

    Exit 0 when suppressed, 1 when not, 3 when the store could not be asked."""
    settings, _ = load_settings_or_exit(config_path)
    hasher = hasher_or_exit(settings)
    entry = with_stores(
        settings,
        hasher,
        lambda stores: stores.suppression_for(address, sender_id, list_id),
        error_exit=CHECK_STORE_ERROR_EXIT,
    )
    if entry is None:
        click.echo("not suppressed")
        sys.exit(NOT_SUPPRESSED_EXIT)
    click.echo(_as_json(entry))


@consent.command("import")
@import_file
@format_option
@config_option
def import_consents(file: Path, file_format: str | None, config_path: Path | None) -> None:
    """Add the consent records of a CSV or JSON Lines FILE (all or nothing; records are
    immutable, so a record id already stored is refused)."""
    settings, _ = load_settings_or_exit(config_path)
    hasher = hasher_or_exit(settings)
    records = _parse(lambda: read_consents(file, hasher, file_format=file_format))
    added = with_stores(settings, hasher, lambda stores: stores.add_consents(records))
    click.echo(f"imported {added} consent records from {file}")


@senders.command("import")
@import_file
@format_option
@config_option
def import_senders(file: Path, file_format: str | None, config_path: Path | None) -> None:
    """Insert or replace the sender profiles of a CSV or JSON Lines FILE (all or nothing)."""
    settings, _ = load_settings_or_exit(config_path)
    hasher = hasher_or_exit(settings)
    profiles = _parse(lambda: read_senders(file, file_format=file_format))
    stored = with_stores(settings, hasher, lambda stores: stores.put_senders(profiles))
    click.echo(f"imported {stored} sender profiles from {file}")


def _change_pause(settings: Settings, sender_id: str, action: PauseAction, reason: str) -> None:
    """Journal the change, then write it to the audit log, unless relay serve holds the log:
    then it writes it at its next MAIL."""
    hasher = hasher_or_exit(settings)

    async def change(stores: Stores) -> tuple[PauseChange | None, bool]:
        if await stores.sender(sender_id) is None:
            raise StoreConflict(f"no sender profile {sender_id!r}")
        at = datetime.now(UTC)
        changed = await stores.change_pause(PauseChange(sender_id, action, at, reason, "operator"))
        audit = AuditLog(settings.audit_path, node=settings.smtp.hostname)
        try:
            await audit.open()
        except AuditError:
            return changed, False  # held by relay serve
        try:
            await record_changes(stores, audit)
        finally:
            await audit.close()
        return changed, True

    changed, recorded = with_stores(settings, hasher, change)
    state = "paused" if action is PauseAction.PAUSE else "resumed"
    if changed is None:
        click.echo(f"sender {sender_id} already {state}")
        return
    where = "in the audit log" if recorded else "journalled; relay serve writes the audit record"
    click.echo(f"sender {sender_id} {state} ({where})")


@senders.command("pause")
@click.argument("sender_id", metavar="SENDER")
@click.option("--reason", default="paused by the operator", help="Why (audit log, 451 reply).")
@config_option
def pause_sender(sender_id: str, reason: str, config_path: Path | None) -> None:
    """Pause SENDER's commercial stream: its new commercial mail gets 451 4.7.1
    (MBP-COMPLAINT-RATE) and its queued commercial mail waits; transactional mail flows."""
    settings, _ = load_settings_or_exit(config_path)
    _change_pause(settings, sender_id, PauseAction.PAUSE, reason)


@senders.command("resume")
@click.argument("sender_id", metavar="SENDER")
@click.option("--reason", default="resumed by the operator", help="Why (audit log).")
@config_option
def resume_sender(sender_id: str, reason: str, config_path: Path | None) -> None:
    """Resume SENDER's commercial stream, paused by an operator or by its complaint rate."""
    settings, _ = load_settings_or_exit(config_path)
    _change_pause(settings, sender_id, PauseAction.RESUME, reason)
