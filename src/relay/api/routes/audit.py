"""The audit log through the admin API (roles operator and compliance):

    GET /api/v1/audit/records   records by recipient, message, queue id, rule, sender, stage,
                                action and time, a page at a time (cursor: the last seq seen)
    GET /api/v1/audit/export    the records of a time range as CSV or JSON Lines, streamed
                                (a JSON Lines export of the whole log verifies like the log)
    GET /api/v1/audit/verify    the hash chain checked, naming the first bad record

The log is this node's (`[audit]`); files are read in a worker thread, a record at a time, so
neither the event loop nor the memory waits on the size of the log. A record being appended
while the log is read (a last line without its end of line) is left for the next request.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from relay.api.admin import Admin
from relay.api.auth import READERS, Principal
from relay.audit.log import audit_files
from relay.audit.query import MAX_LIMIT, AuditQuery, search
from relay.audit.verify import ExportFormat, export_lines, verify
from relay.errors import AuditError

__all__ = ["AuditPage", "AuditRecord", "VerifyReport", "router"]

_CHUNK = 64 * 1024  # characters per chunk of a streamed export
_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}


class AuditRecord(BaseModel):
    """One stored record: the decision (relay.audit.records.AuditEvent) and its place in the
    chain (node, seq, prev, hash)."""

    model_config = ConfigDict(extra="allow")

    time: str
    stage: str
    action: str
    mail_from: str
    recipient_hash: str
    queue_id: str | None = None
    message_id: str | None = None
    recipient: str | None = None
    rule_id: str | None = None
    citation: str | None = None
    policy: str | None = None
    reply: str | None = None
    detail: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    sender_id: str | None = None
    relay_version: str = ""
    node: str
    seq: int
    prev: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditRecord]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null when there are no more records."
    )


class BadRecordModel(BaseModel):
    file: str
    line: int
    seq: int
    problem: str


class VerifyReport(BaseModel):
    ok: bool
    records: int = Field(description="Records that verified (all of them when ok).")
    last_hash: str = Field(description="Hash of the last record that verified: note it.")
    bad: BadRecordModel | None


def _chunks(lines: Iterator[str]) -> Iterator[bytes]:
    """`lines` gathered into chunks of about _CHUNK characters."""
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(prefix="/audit", tags=["audit"])
    directory = admin.audit.directory
    readers = Depends(admin.auth.allow(*READERS))

    def filters(
        recipient: Annotated[
            str | None, Query(description="A recipient address (matched by its keyed hash).")
        ] = None,
        message_id: Annotated[str | None, Query(description="The Message-ID header.")] = None,
        queue_id: str | None = None,
        rule_id: str | None = None,
        sender_id: str | None = None,
        stage: Annotated[
            str | None, Query(description="rcpt, data, queue, feedback, unsubscribe, admin...")
        ] = None,
        action: Annotated[
            str | None, Query(description="accept, reject, defer, fix, warn, suppress...")
        ] = None,
        since: Annotated[datetime | None, Query(description="First time to include.")] = None,
        until: Annotated[datetime | None, Query(description="First time to leave out.")] = None,
    ) -> AuditQuery:
        return AuditQuery(
            recipient_hash=admin.hasher.hash(recipient) if recipient is not None else None,
            message_id=message_id,
            queue_id=queue_id,
            rule_id=rule_id,
            sender_id=sender_id,
            stage=stage,
            action=action,
            since=since,
            until=until,
        )

    @routes.get("/records", summary="Find audit records")
    async def records(
        principal: Annotated[Principal, readers],
        query: Annotated[AuditQuery, Depends(filters)],
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        cursor: Annotated[int, Query(ge=0, description="`next_cursor` of the previous page.")] = 0,
    ) -> AuditPage:
        page = await asyncio.to_thread(search, directory, query, limit, cursor)
        return AuditPage(
            items=[AuditRecord.model_validate(item) for item in page.items],
            next_cursor=page.next_cursor,
        )

    @routes.get(
        "/export",
        summary="Export audit records (streamed)",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}, "application/jsonl": {}}}},
    )
    async def export(
        principal: Annotated[Principal, readers],
        query: Annotated[AuditQuery, Depends(filters)],
        fmt: Annotated[ExportFormat, Query(alias="format")] = "jsonl",
    ) -> StreamingResponse:
        # Fail before the 200 when the log cannot be read at all.
        try:
            await asyncio.to_thread(audit_files, directory)
        except OSError as exc:
            raise AuditError(f"{directory}: cannot list the audit log: {exc}") from exc
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        # A plain generator: the server iterates it in a worker thread, a chunk at a time.
        body = _chunks(export_lines(query.records(directory), fmt))
        return StreamingResponse(
            body,
            media_type=_MEDIA_TYPES[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="audit-{stamp}.{fmt}"',
                "Cache-Control": "no-store",
            },
        )

    @routes.get("/verify", summary="Check the audit log's hash chain")
    async def check(principal: Annotated[Principal, readers]) -> VerifyReport:
        result = await asyncio.to_thread(verify, directory, live=True)
        bad = result.bad
        return VerifyReport(
            ok=result.ok,
            records=result.records,
            last_hash=result.last_hash,
            bad=None
            if bad is None
            else BadRecordModel(
                file=bad.path.name, line=bad.line, seq=bad.seq, problem=bad.problem
            ),
        )

    return routes
