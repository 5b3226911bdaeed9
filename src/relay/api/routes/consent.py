"""Consent records (COMPLIANCE §1.2), withdrawal, erasure and data-subject requests: the data
protection side of the admin API (roles operator and compliance).

    POST /consent/records              add one record (the import rows' checks, incl.
                                       EU-CONSENT-PROOF and EU-CONSENT-NOT-PRETICKED)
    GET  /consent/records              by address and/or sender (cursor pagination)
    GET  /consent/records/{record_id}  one record
    POST /consent/import               CSV or JSON Lines body, all or nothing
    POST /consent/withdraw             set withdrawn_at on the records covering a list or sender
    POST /consent/erasure              GDPR Art. 17 / PIPL Art. 47 (EU-ERASURE, PRC-PIPL-DELETE)
    POST /requests                     register a data subject's request (EU-RESPONSE-1M)
    GET  /requests                     with due date, days left, overdue and alert flags
    GET  /requests/{request_id}
    POST /requests/{request_id}/complete

Consent records are immutable: the only change is withdrawal, and they are deleted only by an
erasure. An erasure deletes the recipient's consent records and soft bounces, removes the clear
address from its suppression entries and requests, and leaves an `erasure` suppression entry
per sender concerned, keyed by the address's HMAC only, so the address stays suppressed
(COMPLIANCE §1.3). Its audit record names the keyed hash, never the clear address.

Every change is audited before it is made (relay.api.admin).
"""

import hashlib
import math
import secrets
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Self

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from relay.api.admin import Admin
from relay.api.auth import DATA_PROTECTION, Principal
from relay.api.deadlines import ALERT_DAYS, due_date
from relay.api.imports import IMPORT_BODY, import_format, read_import_body
from relay.api.paging import Cursor
from relay.stores.importing import Address, ConsentRow, parse_consents
from relay.stores.models import (
    ConsentBasis,
    ConsentRecord,
    SubjectRequest,
    SubjectRequestKind,
    SuppressionEntry,
    SuppressionReason,
    SuppressionScope,
)

__all__ = ["router"]

ERASURE_CITATION = (
    "GDPR Art. 17(1)(b),(c) (EU-ERASURE); PIPL Art. 47 (PRC-PIPL-DELETE); the keyed hash is"
    " kept in the suppression list (COMPLIANCE §1.3)"
)
RESPONSE_CITATION = "GDPR Art. 12(3): answer within one month of receipt (EU-RESPONSE-1M)"


# -- models ------------------------------------------------------------------------------------


class ConsentOut(BaseModel):
    record_id: str
    address: str | None = Field(description="the clear address, where retention keeps it")
    address_hash: str
    sender_id: str
    scope: list[str]
    basis: ConsentBasis
    jurisdictions: list[str]
    obtained_at: datetime
    source: str
    evidence_ref: str
    notice_version: str | None
    affirmative_action: bool
    bundled: bool
    expires_at: datetime | None
    withdrawn_at: datetime | None
    product_category: str | None
    time_zone: str | None

    @field_validator("jurisdictions", mode="before")
    @classmethod
    def _in_order(cls, jurisdictions: Iterable[str]) -> list[str]:
        return sorted(jurisdictions)

    @classmethod
    def of(cls, record: ConsentRecord) -> Self:
        return cls.model_validate(record, from_attributes=True)


class ConsentPage(BaseModel):
    items: list[ConsentOut]
    next_cursor: str | None


class ConsentAdded(BaseModel):
    record: ConsentOut
    audit_ref: str


class ConsentImported(BaseModel):
    rows: int
    added: int
    sha256: str
    audit_ref: str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class WithdrawIn(_Body):
    address: Address
    sender_id: str = Field(min_length=1)
    list_id: str | None = Field(
        default=None,
        min_length=1,
        description="only the records covering this list (a record for all commercial mail"
        " covers it, and is withdrawn whole); none: every record of the sender",
    )
    note: str | None = Field(default=None, max_length=1000)


class Withdrawn(BaseModel):
    withdrawn: list[ConsentOut] = Field(description="the records withdrawn now")
    already_withdrawn: list[str] = Field(description="record ids withdrawn before")
    audit_ref: str | None = Field(description="null when nothing was left to withdraw")


class ErasureIn(_Body):
    address: Address
    sender_id: str | None = Field(default=None, min_length=1, description="none: every sender")
    note: str | None = Field(default=None, max_length=1000)


class ErasureOut(BaseModel):
    address_hash: str
    senders: list[str]
    consents_deleted: list[str]
    suppressions_cleared: int = Field(description="entries whose clear address was removed")
    soft_bounces_deleted: int
    requests_cleared: int = Field(description="data-subject requests whose address was removed")
    suppressions_added: int = Field(description="erasure entries, keyed hash only")
    audit_ref: str


class RequestIn(_Body):
    kind: SubjectRequestKind
    address: Address
    sender_id: str = Field(min_length=1)
    received_at: AwareDatetime | None = Field(default=None, description="default: now")
    note: str | None = Field(default=None, max_length=1000)


class CompleteIn(_Body):
    note: str | None = Field(default=None, max_length=1000)


class RequestOut(BaseModel):
    request_id: str
    kind: SubjectRequestKind
    address: str | None
    address_hash: str
    sender_id: str
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    note: str | None
    days_left: int | None = Field(description="whole days to the due date; null once completed")
    overdue: bool
    alert: bool = Field(description=f"open and due within {ALERT_DAYS} days, or overdue")
    audit_ref: str | None

    @classmethod
    def of(cls, request: SubjectRequest, now: datetime) -> Self:
        is_open = request.completed_at is None
        days_left = math.floor((request.due_at - now).total_seconds() / 86400)
        return cls(
            request_id=request.request_id,
            kind=request.kind,
            address=request.address,
            address_hash=request.address_hash,
            sender_id=request.sender_id,
            received_at=request.received_at,
            due_at=request.due_at,
            completed_at=request.completed_at,
            note=request.note,
            days_left=days_left if is_open else None,
            overdue=is_open and now > request.due_at,
            alert=is_open and days_left <= ALERT_DAYS,
            audit_ref=request.audit_ref,
        )


class RequestPage(BaseModel):
    items: list[RequestOut]
    next_cursor: str | None


# -- routes ------------------------------------------------------------------------------------


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["consent"])
    protector = Depends(admin.auth.allow(*DATA_PROTECTION))

    @routes.post("/consent/records", summary="Add a consent record", status_code=201)
    async def add_consent(
        row: ConsentRow, principal: Annotated[Principal, protector]
    ) -> ConsentAdded:
        if await admin.stores.consent_record(row.record_id) is not None:
            raise HTTPException(
                409, f"consent records are immutable; record id {row.record_id!r} is taken"
            )
        record = row.to_record(admin.hasher)
        event = admin.event(
            principal,
            "consent-add",
            f"add consent record {record.record_id!r} ({record.basis.value})",
            sender_id=record.sender_id,
            address=row.address,
            rule_id="EU-CONSENT-PROOF",
            inputs={
                "record_id": record.record_id,
                "basis": record.basis.value,
                "scope": list(record.scope),
                "jurisdictions": sorted(record.jurisdictions),
                "evidence_ref": record.evidence_ref,
            },
        )
        (audit_ref,) = await admin.record(event)
        await admin.stores.add_consents([record])
        stored = await admin.stores.consent_record(record.record_id)
        return ConsentAdded(record=ConsentOut.of(stored or record), audit_ref=audit_ref)

    @routes.get("/consent/records", summary="Consent records of an address and/or sender")
    async def list_consents(
        principal: Annotated[Principal, protector],
        address: Annotated[Address | None, Query()] = None,
        sender_id: Annotated[str | None, Query(min_length=1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> ConsentPage:
        address_hash = None if address is None else admin.hasher.hash(address)
        after = None if cursor is None else Cursor.decode(cursor, 1)[0]
        records = await admin.stores.consents_page(address_hash, sender_id, after, limit + 1)
        more = len(records) > limit
        records = records[:limit]
        return ConsentPage(
            items=[ConsentOut.of(record) for record in records],
            next_cursor=Cursor.encode([records[-1].record_id]) if more else None,
        )

    @routes.get("/consent/records/{record_id}", summary="One consent record")
    async def get_consent(record_id: str, principal: Annotated[Principal, protector]) -> ConsentOut:
        record = await admin.stores.consent_record(record_id)
        if record is None:
            raise HTTPException(404, f"no consent record {record_id!r}")
        return ConsentOut.of(record)

    @routes.post(
        "/consent/import",
        summary="Import consent records (CSV or JSON Lines body; all or nothing)",
        openapi_extra=IMPORT_BODY,
    )
    async def import_consents(
        request: Request, principal: Annotated[Principal, protector]
    ) -> ConsentImported:
        kind = import_format(request)
        body = await read_import_body(request, admin.settings.http.max_import_size)
        records = parse_consents(body, kind, admin.hasher)
        senders = sorted({record.sender_id for record in records})
        digest = hashlib.sha256(body).hexdigest()
        event = admin.event(
            principal,
            "consent-import",
            f"import {len(records)} consent records ({kind.value}, {len(body)} bytes)",
            sender_id=senders[0] if len(senders) == 1 else None,
            rule_id="EU-CONSENT-PROOF",
            inputs={"rows": len(records), "sha256": digest, "format": kind.value},
        )
        (audit_ref,) = await admin.record(event)
        added = await admin.stores.add_consents(records)
        return ConsentImported(rows=len(records), added=added, sha256=digest, audit_ref=audit_ref)

    @routes.post("/consent/withdraw", summary="Withdraw consent (sets withdrawn_at)")
    async def withdraw(body: WithdrawIn, principal: Annotated[Principal, protector]) -> Withdrawn:
        now = datetime.now(UTC)
        records = await admin.stores.consents_for(body.address, body.sender_id)
        covering = [
            record
            for record in records
            if body.list_id is None or "*" in record.scope or body.list_id in record.scope
        ]
        if not covering:
            what = "" if body.list_id is None else f" covering list {body.list_id!r}"
            raise HTTPException(
                404, f"no consent record of sender {body.sender_id!r}{what} for this address"
            )
        active = [r for r in covering if r.withdrawn_at is None or r.withdrawn_at > now]
        before = sorted(r.record_id for r in covering if r not in active)
        if not active:
            return Withdrawn(withdrawn=[], already_withdrawn=before, audit_ref=None)
        ids = sorted(record.record_id for record in active)
        event = admin.event(
            principal,
            "consent-withdraw",
            f"withdraw {len(ids)} consent record(s) of sender {body.sender_id!r}",
            sender_id=body.sender_id,
            address=body.address,
            citation="GDPR Art. 7(3)",
            inputs={"record_ids": ids, "list_id": body.list_id, "note": body.note},
            at=now,
        )
        (audit_ref,) = await admin.record(event)
        changed = await admin.stores.withdraw_consents(ids, now)
        return Withdrawn(
            withdrawn=[ConsentOut.of(record) for record in changed],
            already_withdrawn=before,
            audit_ref=audit_ref,
        )

    @routes.post(
        "/consent/erasure",
        summary="Erase an address's data (GDPR Art. 17, PIPL Art. 47); it stays suppressed",
    )
    async def erase(body: ErasureIn, principal: Annotated[Principal, protector]) -> ErasureOut:
        now = datetime.now(UTC)
        address_hash = admin.hasher.hash(body.address)
        holding = await admin.stores.senders_holding(address_hash)
        if body.sender_id is not None:
            if body.sender_id not in holding and await admin.stores.sender(body.sender_id) is None:
                raise HTTPException(
                    404, f"sender_id: no sender profile {body.sender_id!r} and no data of it"
                )
            senders = [body.sender_id]
        else:
            profiles = [profile.sender_id for profile in await admin.stores.senders()]
            senders = sorted({*profiles, *holding})
        if not senders:
            raise HTTPException(404, "no sender profile to suppress the erased address for")
        # The record names the keyed hash only: the audit log is append-only.
        event = admin.event(
            principal,
            "erasure",
            f"erase the address's data for sender(s) {', '.join(senders)}; keep its keyed"
            " hash suppressed",
            sender_id=body.sender_id,
            address_hash=address_hash,
            rule_id="EU-ERASURE",
            citation=ERASURE_CITATION,
            inputs={
                "senders": senders,
                "rules": ["EU-ERASURE", "PRC-PIPL-DELETE"],
                "note": body.note,
            },
            at=now,
        )
        (audit_ref,) = await admin.record(event)
        entries = [
            SuppressionEntry(
                address_hash=address_hash,
                sender_id=sender,
                scope=SuppressionScope.SENDER,
                reason=SuppressionReason.ERASURE,
                source=f"erasure:{principal.name}",
                received_at=now,
                audit_ref=audit_ref,
            )
            for sender in senders
        ]
        result = await admin.stores.erase_address(address_hash, senders, entries)
        return ErasureOut(
            address_hash=address_hash,
            senders=senders,
            consents_deleted=list(result.consents_deleted),
            suppressions_cleared=result.suppressions_cleared,
            soft_bounces_deleted=result.soft_bounces_deleted,
            requests_cleared=result.requests_cleared,
            suppressions_added=result.suppressions_added,
            audit_ref=audit_ref,
        )

    # -- data-subject requests (EU-RESPONSE-1M) ------------------------------------------------

    @routes.post("/requests", summary="Register a data subject's request", status_code=201)
    async def add_request(
        body: RequestIn, principal: Annotated[Principal, protector]
    ) -> RequestOut:
        now = datetime.now(UTC)
        received_at = (body.received_at or now).astimezone(UTC)
        if received_at > now:
            raise HTTPException(422, "body.received_at: in the future")
        request = SubjectRequest(
            request_id=f"dsr-{secrets.token_hex(6)}",
            kind=body.kind,
            address_hash=admin.hasher.hash(body.address),
            sender_id=body.sender_id,
            received_at=received_at,
            due_at=due_date(received_at),
            note=body.note,
            address=body.address,
        )
        event = admin.event(
            principal,
            "request-add",
            f"{body.kind.value} request {request.request_id} to sender {body.sender_id!r},"
            f" due {request.due_at.isoformat()}",
            sender_id=body.sender_id,
            address=body.address,
            rule_id="EU-RESPONSE-1M",
            citation=RESPONSE_CITATION,
            inputs={
                "request_id": request.request_id,
                "kind": body.kind.value,
                "received_at": received_at.isoformat(),
                "due_at": request.due_at.isoformat(),
                "note": body.note,
            },
            at=now,
        )
        (audit_ref,) = await admin.record(event)
        stored = replace(request, audit_ref=audit_ref)
        await admin.stores.add_subject_request(stored)
        kept = await admin.stores.subject_request(stored.request_id)
        return RequestOut.of(kept or stored, now)

    @routes.get("/requests", summary="Data-subject requests, soonest due first")
    async def list_requests(
        principal: Annotated[Principal, protector],
        open_only: Annotated[
            bool, Query(alias="open", description="only those not completed")
        ] = False,
        sender_id: Annotated[str | None, Query(min_length=1)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> RequestPage:
        after = None
        if cursor is not None:
            due, request_id = Cursor.decode(cursor, 2)
            try:
                after = (datetime.fromisoformat(due), request_id)
            except ValueError:
                raise HTTPException(422, "query.cursor: not a cursor of this listing") from None
        requests = await admin.stores.subject_requests_page(open_only, sender_id, after, limit + 1)
        more = len(requests) > limit
        requests = requests[:limit]
        now = datetime.now(UTC)
        last = requests[-1] if requests else None
        return RequestPage(
            items=[RequestOut.of(request, now) for request in requests],
            next_cursor=(
                Cursor.encode([last.due_at.isoformat(), last.request_id]) if more and last else None
            ),
        )

    @routes.get("/requests/{request_id}", summary="One data-subject request")
    async def get_request(
        request_id: str, principal: Annotated[Principal, protector]
    ) -> RequestOut:
        request = await admin.stores.subject_request(request_id)
        if request is None:
            raise HTTPException(404, f"no data-subject request {request_id!r}")
        return RequestOut.of(request, datetime.now(UTC))

    @routes.post("/requests/{request_id}/complete", summary="Mark a request answered")
    async def complete_request(
        request_id: str,
        principal: Annotated[Principal, protector],
        body: CompleteIn | None = None,
    ) -> RequestOut:
        now = datetime.now(UTC)
        request = await admin.stores.subject_request(request_id)
        if request is None:
            raise HTTPException(404, f"no data-subject request {request_id!r}")
        if request.completed_at is not None:
            raise HTTPException(
                409, f"request {request_id} was completed at {request.completed_at.isoformat()}"
            )
        event = admin.event(
            principal,
            "request-complete",
            f"{request.kind.value} request {request_id} completed"
            + (" late" if now > request.due_at else ""),
            sender_id=request.sender_id,
            address_hash=request.address_hash,
            rule_id="EU-RESPONSE-1M",
            citation=RESPONSE_CITATION,
            inputs={
                "request_id": request_id,
                "due_at": request.due_at.isoformat(),
                "late": now > request.due_at,
                "note": None if body is None else body.note,
            },
            at=now,
        )
        await admin.record(event)
        completed = await admin.stores.complete_subject_request(request_id, now)
        if completed is None:
            raise HTTPException(404, f"no data-subject request {request_id!r}")
        return RequestOut.of(completed, now)

    return routes
