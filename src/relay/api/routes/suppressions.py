"""Suppression entries (COMPLIANCE §1.3): list, add, remove, look up, import and export.

    GET    /suppressions           list (filters; cursor pagination)
    POST   /suppressions           add one            201 new, 200 already there
    DELETE /suppressions           remove one         404 none, 409 an erasure entry
    GET    /suppressions/lookup    is this address suppressed for this sender, and why
    POST   /suppressions/import    CSV or JSON Lines body, all or nothing (422: `line N: ...`)
    GET    /suppressions/export    streamed, in the import format (export -> import round-trips)

Every role may use them; a mailer only for its own sender (403 otherwise, and its listings are
its sender's). Every change is audited before it is made (relay.api.admin), and the entry keeps
the hash of its record as audit_ref. An erasure entry is never removed: its keyed hash is what
keeps an erased address suppressed (EU-ERASURE).
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from relay.api.admin import Admin
from relay.api.auth import ANYONE, Principal
from relay.api.imports import IMPORT_BODY, import_format, read_import_body
from relay.api.paging import Cursor
from relay.stores.importing import (
    SUPPRESSION_COLUMNS,
    Address,
    ImportFormat,
    parse_suppressions,
    suppression_export_row,
)
from relay.stores.models import (
    SuppressionEntry,
    SuppressionKey,
    SuppressionQuery,
    SuppressionReason,
    SuppressionScope,
)

__all__ = [
    "EXPORT_CHUNK",
    "SuppressionOut",
    "router",
]

EXPORT_CHUNK = 2000  # entries fetched from the store per step of an export

_EXPORT_TYPES = {ImportFormat.CSV: "text/csv", ImportFormat.JSONL: "application/x-ndjson"}


# -- models ------------------------------------------------------------------------------------


class SuppressionOut(BaseModel):
    address: str | None = Field(description="the clear address, where retention keeps it")
    address_hash: str = Field(description="HMAC-SHA256 of the normalised address, hex")
    sender_id: str
    scope: SuppressionScope
    list_id: str | None
    reason: SuppressionReason
    source: str
    received_at: datetime
    source_message_id: str | None
    audit_ref: str | None = Field(description="hash of the audit record that caused it")

    @classmethod
    def of(cls, entry: SuppressionEntry) -> Self:
        return cls.model_validate(entry, from_attributes=True)


class SuppressionPage(BaseModel):
    items: list[SuppressionOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: done")


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    address: Address
    sender_id: str = Field(min_length=1)
    scope: SuppressionScope = SuppressionScope.SENDER
    list_id: str | None = Field(default=None, min_length=1)
    reason: SuppressionReason = SuppressionReason.MANUAL
    note: str | None = Field(default=None, max_length=1000, description="why, for the audit log")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.scope is SuppressionScope.LIST and self.list_id is None:
            raise ValueError("scope sender+list needs a list_id")
        if self.scope is SuppressionScope.SENDER and self.list_id is not None:
            raise ValueError("list_id needs scope sender+list (scope sender covers every list)")
        if self.reason is SuppressionReason.ERASURE:
            raise ValueError(
                "reason erasure is set by POST /api/v1/consent/erasure, which also erases the"
                " address's data"
            )
        return self


class SuppressionAdded(BaseModel):
    created: bool = Field(description="false: the entry was there already (unchanged)")
    entry: SuppressionOut


class SuppressionRemoved(BaseModel):
    removed: SuppressionOut
    audit_ref: str


class Lookup(BaseModel):
    suppressed: bool
    entry: SuppressionOut | None
    why: str


class ImportResult(BaseModel):
    rows: int
    added: int
    already_present: int
    sha256: str = Field(description="of the request body, as in the audit record")
    audit_ref: str


def _why(entry: SuppressionEntry | None, address: str, sender_id: str, list_id: str | None) -> str:
    mail = f"mail of sender {sender_id!r}" + (f" to list {list_id!r}" if list_id else "")
    if entry is None:
        return f"not suppressed: no entry stops {mail} to {address}"
    if entry.scope is SuppressionScope.SENDER:
        what = "all mail of the sender"
    else:
        what = f"list {entry.list_id!r}"
    if entry.audit_ref:
        record = f"audit record {entry.audit_ref}"
    else:
        record = "no audit record (added before relay kept them)"
    message = f", message {entry.source_message_id}" if entry.source_message_id else ""
    return (
        f"suppressed: {mail} to {address} is stopped by an entry for {what}, reason"
        f" {entry.reason.value}, since {entry.received_at.isoformat()}, source"
        f" {entry.source!r}{message}; {record}"
    )


# -- routes ------------------------------------------------------------------------------------


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["suppressions"])
    anyone = Depends(admin.auth.allow(*ANYONE))

    @routes.get("/suppressions", summary="List suppression entries")
    async def list_suppressions(
        principal: Annotated[Principal, anyone],
        sender_id: str | None = None,
        reason: SuppressionReason | None = None,
        list_id: str | None = None,
        address: Annotated[Address | None, Query(description="this recipient only")] = None,
        since: Annotated[AwareDatetime | None, Query(description="received at or after")] = None,
        until: Annotated[AwareDatetime | None, Query(description="received before")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> SuppressionPage:
        query = SuppressionQuery(
            sender_id=principal.sender_scope(sender_id),
            reason=reason,
            list_id=list_id,
            address_hash=None if address is None else admin.hasher.hash(address),
            received_since=since,
            received_until=until,
        )
        after = None if cursor is None else SuppressionKey(*Cursor.decode(cursor, 3))
        if after is not None and not _is_hash(after.address_hash):
            raise HTTPException(422, "query.cursor: not a cursor of this listing")
        entries = await admin.stores.suppressions_page(query, after, limit + 1)
        more = len(entries) > limit
        entries = entries[:limit]
        next_cursor = Cursor.encode(SuppressionKey.of(entries[-1])) if more else None
        return SuppressionPage(
            items=[SuppressionOut.of(entry) for entry in entries], next_cursor=next_cursor
        )

    @routes.post(
        "/suppressions",
        summary="Add a suppression entry",
        status_code=201,
        responses={200: {"description": "the entry was there already"}},
    )
    async def add_suppression(
        body: SuppressionIn, principal: Annotated[Principal, anyone], response: Response
    ) -> SuppressionAdded:
        principal.check_sender(body.sender_id)
        list_id = body.list_id if body.scope is SuppressionScope.LIST else None
        address_hash = admin.hasher.hash(body.address)
        present = await admin.stores.suppression_entry(address_hash, body.sender_id, list_id)
        if present is not None:
            response.status_code = 200
            return SuppressionAdded(created=False, entry=SuppressionOut.of(present))
        now = datetime.now(UTC)
        what = "all mail" if list_id is None else f"list {list_id!r}"
        event = admin.event(
            principal,
            "suppression-add",
            f"suppress {what} of sender {body.sender_id!r} ({body.reason.value})",
            sender_id=body.sender_id,
            address=body.address,
            inputs={
                "scope": body.scope.value,
                "list_id": list_id,
                "reason": body.reason.value,
                "note": body.note,
            },
            at=now,
        )
        (audit_ref,) = await admin.record(event)
        entry = SuppressionEntry(
            address_hash=address_hash,
            sender_id=body.sender_id,
            scope=body.scope,
            reason=body.reason,
            source=f"admin:{principal.name}",
            received_at=now,
            list_id=list_id,
            address=body.address,
            audit_ref=audit_ref,
        )
        added = await admin.stores.add_suppressions([entry])
        if not added:  # added meanwhile by someone else
            response.status_code = 200
        stored = await admin.stores.suppression_entry(address_hash, body.sender_id, list_id)
        return SuppressionAdded(created=bool(added), entry=SuppressionOut.of(stored or entry))

    @routes.delete("/suppressions", summary="Remove a suppression entry")
    async def remove_suppression(
        principal: Annotated[Principal, anyone],
        address: Annotated[Address, Query()],
        sender_id: Annotated[str, Query(min_length=1)],
        list_id: Annotated[
            str | None, Query(min_length=1, description="none: the sender-wide entry")
        ] = None,
        note: Annotated[str | None, Query(max_length=1000)] = None,
    ) -> SuppressionRemoved:
        principal.check_sender(sender_id)
        address_hash = admin.hasher.hash(address)
        entry = await admin.stores.suppression_entry(address_hash, sender_id, list_id)
        which = "sender-wide" if list_id is None else f"list {list_id!r}"
        if entry is None:
            raise HTTPException(
                404, f"no {which} suppression entry of sender {sender_id!r} for {address}"
            )
        if entry.reason is SuppressionReason.ERASURE:
            raise HTTPException(
                409,
                f"the {which} entry of sender {sender_id!r} for this address records an erasure"
                " (GDPR Art. 17, PIPL Art. 47) and cannot be removed: its keyed hash is what"
                " keeps the erased address suppressed",
            )
        event = admin.event(
            principal,
            "suppression-remove",
            f"remove the {which} suppression of sender {sender_id!r} (reason {entry.reason.value})",
            sender_id=sender_id,
            address=address,
            inputs={
                "list_id": list_id,
                "reason": entry.reason.value,
                "entry_audit_ref": entry.audit_ref,
                "note": note,
            },
        )
        (audit_ref,) = await admin.record(event)
        removed = await admin.stores.remove_suppression(address_hash, sender_id, list_id)
        if removed is None:
            raise HTTPException(404, f"the {which} suppression entry was removed meanwhile")
        return SuppressionRemoved(removed=SuppressionOut.of(removed), audit_ref=audit_ref)

    @routes.get("/suppressions/lookup", summary="Is this address suppressed for this sender?")
    async def lookup(
        principal: Annotated[Principal, anyone],
        address: Annotated[Address, Query()],
        sender_id: Annotated[str, Query(min_length=1)],
        list_id: Annotated[str | None, Query(min_length=1)] = None,
    ) -> Lookup:
        principal.check_sender(sender_id)
        entry = await admin.stores.suppression_for(address, sender_id, list_id)
        return Lookup(
            suppressed=entry is not None,
            entry=None if entry is None else SuppressionOut.of(entry),
            why=_why(entry, address, sender_id, list_id),
        )

    @routes.post(
        "/suppressions/import",
        summary="Import suppression entries (CSV or JSON Lines body; all or nothing)",
        openapi_extra=IMPORT_BODY,
    )
    async def import_suppressions(
        request: Request, principal: Annotated[Principal, anyone]
    ) -> ImportResult:
        kind = import_format(request)
        body = await read_import_body(request, admin.settings.http.max_import_size)
        entries = parse_suppressions(
            body, kind, admin.hasher, source=f"import:api:{principal.name}"
        )
        senders = sorted({entry.sender_id for entry in entries})
        for sender in senders:
            principal.check_sender(sender)
        digest = hashlib.sha256(body).hexdigest()
        event = admin.event(
            principal,
            "suppression-import",
            f"import {len(entries)} suppression entries ({kind.value}, {len(body)} bytes)",
            sender_id=senders[0] if len(senders) == 1 else None,
            inputs={
                "rows": len(entries),
                "sha256": digest,
                "format": kind.value,
                "senders": senders,
            },
        )
        (audit_ref,) = await admin.record(event)
        added = await admin.stores.add_suppressions(
            [_with_ref(entry, audit_ref) for entry in entries]
        )
        return ImportResult(
            rows=len(entries),
            added=added,
            already_present=len(entries) - added,
            sha256=digest,
            audit_ref=audit_ref,
        )

    @routes.get(
        "/suppressions/export",
        summary="Export suppression entries, streamed, in the import format",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
    )
    async def export_suppressions(
        principal: Annotated[Principal, anyone],
        sender_id: str | None = None,
        file_format: Annotated[
            ImportFormat, Query(alias="format", description="csv or jsonl")
        ] = ImportFormat.CSV,
    ) -> StreamingResponse:
        query = SuppressionQuery(sender_id=principal.sender_scope(sender_id))
        first = await admin.stores.suppressions_page(query, None, EXPORT_CHUNK)
        # A header is latin-1: the file name keeps only the safe characters of the sender id.
        sender = re.sub(r"[^A-Za-z0-9._-]", "_", query.sender_id or "all")
        name = f"suppressions-{sender}.{file_format.value}"
        return StreamingResponse(
            _export(admin, query, first, file_format),
            media_type=_EXPORT_TYPES[file_format],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return routes


async def _export(
    admin: Admin, query: SuppressionQuery, first: list[SuppressionEntry], kind: ImportFormat
) -> AsyncIterator[bytes]:
    """The export, one chunk of entries at a time (the first fetched before the response
    starts, so that a store failure is still a 503)."""
    if kind is ImportFormat.CSV:
        yield _csv_lines([dict(zip(SUPPRESSION_COLUMNS, SUPPRESSION_COLUMNS, strict=True))])
    entries = first
    while entries:
        rows = [suppression_export_row(entry) for entry in entries]
        yield _csv_lines(rows) if kind is ImportFormat.CSV else _jsonl_lines(rows)
        if len(entries) < EXPORT_CHUNK:
            break
        after = SuppressionKey.of(entries[-1])
        entries = await admin.stores.suppressions_page(query, after, EXPORT_CHUNK)


def _csv_lines(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, SUPPRESSION_COLUMNS, lineterminator="\n")
    writer.writerows({name: value or "" for name, value in row.items()} for row in rows)
    return out.getvalue().encode()


def _jsonl_lines(rows: list[dict[str, Any]]) -> bytes:
    return "".join(
        json.dumps({name: value for name, value in row.items() if value is not None}) + "\n"
        for row in rows
    ).encode()


def _with_ref(entry: SuppressionEntry, audit_ref: str) -> SuppressionEntry:
    return replace(entry, audit_ref=audit_ref)


def _is_hash(value: str) -> bool:
    return len(value) == 64 and all(char in "0123456789abcdef" for char in value)
