"""`relay tokens create|list|revoke`: bearer tokens of the admin API (relay.api.auth).

A token is shown once, as the last line `create` prints; the stores keep only its hash. Exit
codes: 0 done; 1 the store refused (a name already used, no such token) or could not be written;
2 bad configuration or arguments.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from relay.api.auth import new_token
from relay.cli import config_option, load_settings_or_exit
from relay.cli.stores import hasher_or_exit, with_stores
from relay.errors import StoreConflict
from relay.stores.base import Stores
from relay.stores.models import ApiRole, ApiToken

__all__ = ["tokens"]


@click.group()
def tokens() -> None:
    """Bearer tokens of the admin API, each with one role."""


@tokens.command("create")
@click.option(
    "--role",
    type=click.Choice([role.value for role in ApiRole]),
    required=True,
    help="operator: everything; compliance: read all, consent and erasure; mailer: its own"
    " sender's suppressions.",
)
@click.option("--name", default=None, help="Who or what holds it (default: role and date).")
@click.option("--sender", "sender_id", default=None, help="The sender of a mailer token.")
@config_option
def create_token(
    role: str, name: str | None, sender_id: str | None, config_path: Path | None
) -> None:
    """Make a token and print it as the last line (shown once: keep it secret)."""
    api_role = ApiRole(role)
    if api_role is ApiRole.MAILER and sender_id is None:
        raise click.UsageError("a mailer token needs --sender SENDER: the sender it acts for")
    if api_role is not ApiRole.MAILER and sender_id is not None:
        raise click.UsageError("--sender is for mailer tokens only")
    settings, _ = load_settings_or_exit(config_path)
    now = datetime.now(UTC)
    token, stored = new_token(name or f"{role}-{now:%Y%m%d%H%M%S}", api_role, sender_id, now)

    async def add(stores: Stores) -> None:
        if sender_id is not None and await stores.sender(sender_id) is None:
            raise StoreConflict(f"no sender profile {sender_id!r} (relay senders import)")
        await stores.add_api_token(stored)

    with_stores(settings, hasher_or_exit(settings), add)
    scope = f", sender {sender_id}" if sender_id else ""
    click.echo(f"token {stored.token_id} {stored.name!r} (role {role}{scope}); shown once:")
    click.echo(token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def list_tokens(as_json: bool, config_path: Path | None) -> None:
    """The tokens (never their secrets)."""
    settings, _ = load_settings_or_exit(config_path)
    found = with_stores(settings, hasher_or_exit(settings), lambda stores: stores.api_tokens())
    for token in found:
        click.echo(json.dumps(_summary(token)) if as_json else _line(token))


@tokens.command("revoke")
@click.argument("token_id")
@config_option
def revoke_token(token_id: str, config_path: Path | None) -> None:
    """Revoke TOKEN_ID at once (requests with it are answered 401)."""
    settings, _ = load_settings_or_exit(config_path)

    async def revoke(stores: Stores) -> ApiToken:
        token = await stores.revoke_api_token(token_id, datetime.now(UTC))
        if token is None:
            raise StoreConflict(f"no API token {token_id!r} (relay tokens list)")
        return token

    token = with_stores(settings, hasher_or_exit(settings), revoke)
    click.echo(f"token {token.token_id} {token.name!r} revoked")


def _summary(token: ApiToken) -> dict[str, str | None]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "role": token.role.value,
        "sender": token.sender_id,
        "created_at": token.created_at.isoformat(),
        "revoked_at": None if token.revoked_at is None else token.revoked_at.isoformat(),
    }


def _line(token: ApiToken) -> str:
    state = "active" if token.revoked_at is None else f"revoked {token.revoked_at:%Y-%m-%d}"
    sender = f" sender={token.sender_id}" if token.sender_id else ""
    return f"{token.token_id}  {token.role.value:<10} {token.name}{sender}  ({state})"
