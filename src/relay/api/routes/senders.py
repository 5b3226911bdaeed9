"""Sender profiles: read them (operator, compliance) with their pause state and the DKIM selectors
of their verified domains; create or replace them, add and remove verified domains, pause and
resume their commercial stream (operator).

    GET    /senders                           every profile
    GET    /senders/{id}                      one profile
    PUT    /senders/{id}                      create (201) or replace (200) a profile
    POST   /senders/{id}/domains              add a verified From domain
    DELETE /senders/{id}/domains/{domain}     remove one
    POST   /senders/{id}/pause                pause its commercial stream (relay senders pause)
    POST   /senders/{id}/resume               resume it

A profile is validated as an import row is (relay.stores.importing.SenderRow); a domain or SMTP
user that belongs to another sender is 409. Each change is audited (stage "admin") before it is
made; a pause or resume is also journalled and written to the audit log at once as the CLI's is
(stage "sender", relay.policy.standing).
"""

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from relay.api.admin import Admin
from relay.api.auth import OPERATOR, READERS, Principal
from relay.policy.standing import record_changes
from relay.stores.importing import Domain, SenderFields, SenderRow, Text
from relay.stores.models import MessageClass, PauseAction, PauseChange, SenderProfile

__all__ = ["router"]

SenderId = Annotated[str, Path(min_length=1, max_length=200, description="The sender id.")]


# -- models ------------------------------------------------------------------------------------


class DkimSelector(BaseModel):
    """A DKIM key that signs mail From one of the sender's verified domains."""

    verified_domain: str  # the sender's domain it signs for
    domain: str  # d=: the domain itself or its nearest parent with a key
    selector: str
    algorithm: str
    bits: int
    record_name: str  # SELECTOR._domainkey.DOMAIN, where the public key is published
    active: bool  # False: an earlier key of a rotation, kept only to show its selector


class PauseState(BaseModel):
    """The sender's latest pause or resume (none: never paused)."""

    paused: bool
    action: PauseAction | None = None
    at: datetime | None = None
    reason: str | None = None
    source: str | None = None  # "operator", or the rule id of an automatic pause


class SenderView(BaseModel):
    sender_id: str
    legal_name: str
    postal_address: str
    contact: str
    verified_domains: list[str]
    default_jurisdiction: str | None
    message_class: MessageClass
    users: list[str]
    fix_us: bool
    fixes_allowed: bool
    bounce_domain: str | None
    time_zone: str | None
    pause: PauseState
    dkim: list[DkimSelector]


class SenderChange(BaseModel):
    changed: bool  # False: it already was so
    sender: SenderView


class SenderBody(SenderFields):
    """A sender profile; `sender_id` may be left out (the path names it) or must match it."""

    sender_id: Text | None = None


class DomainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: Domain


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


# -- the routes --------------------------------------------------------------------------------


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["senders"])
    reader = Annotated[Principal, Depends(admin.auth.allow(*READERS))]
    operator = Annotated[Principal, Depends(admin.auth.allow(*OPERATOR))]

    async def view(profile: SenderProfile) -> SenderView:
        state = await admin.stores.pause_state(profile.sender_id)
        pause = PauseState(paused=False)
        if state is not None:
            pause = PauseState(
                paused=state.action is PauseAction.PAUSE,
                action=state.action,
                at=state.at,
                reason=state.reason,
                source=state.source,
            )
        return SenderView(
            sender_id=profile.sender_id,
            legal_name=profile.legal_name,
            postal_address=profile.postal_address,
            contact=profile.contact,
            verified_domains=list(profile.verified_domains),
            default_jurisdiction=profile.default_jurisdiction,
            message_class=profile.message_class,
            users=list(profile.users),
            fix_us=profile.fix_us,
            fixes_allowed=profile.fixes_allowed,
            bounce_domain=profile.bounce_domain,
            time_zone=profile.time_zone,
            pause=pause,
            dkim=selectors(profile),
        )

    def selectors(profile: SenderProfile) -> list[DkimSelector]:
        found: list[DkimSelector] = []
        for verified in profile.verified_domains:
            name = admin.keyring.signing_domain(verified)
            if name is None:
                continue
            active = admin.keyring.for_domain(verified)
            found.extend(
                DkimSelector(
                    verified_domain=verified,
                    domain=key.domain,
                    selector=key.selector,
                    algorithm=key.algorithm,
                    bits=key.bits,
                    record_name=key.record_name,
                    active=any(key is used for used in active),
                )
                for key in admin.keyring.keys
                if key.domain == name
            )
        return found

    async def existing(sender_id: str) -> SenderProfile:
        profile = await admin.stores.sender(sender_id)
        if profile is None:
            raise HTTPException(404, f"no sender profile {sender_id!r}")
        return profile

    async def check_claims(profile: SenderProfile) -> None:
        """409 when a domain or SMTP user of `profile` belongs to another sender (the store
        refuses it too; asked first so that a refused request is not audited as a change)."""
        for domain in profile.verified_domains:
            owner = await admin.stores.sender_for_domain(domain)
            if owner is not None and owner.sender_id != profile.sender_id:
                raise HTTPException(
                    409, f"domain {domain!r} is a verified domain of sender {owner.sender_id!r}"
                )
        for user in profile.users:
            owner = await admin.stores.sender_for_user(user)
            if owner is not None and owner.sender_id != profile.sender_id:
                raise HTTPException(
                    409, f"SMTP user {user!r} belongs to sender {owner.sender_id!r}"
                )

    def revalidated(profile: SenderProfile) -> SenderProfile:
        """`profile` after a change of its domains, checked as a whole again (409 if the
        change would leave it invalid, e.g. without a verified domain)."""
        fields = dataclasses.asdict(profile)
        try:
            return SenderRow.model_validate(fields).to_profile()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise HTTPException(409, f"the profile would not be valid: {problems}") from None

    async def store(
        principal: Principal, profile: SenderProfile, action: str, detail: str, **inputs: Any
    ) -> None:
        await check_claims(profile)
        await admin.record(
            admin.event(
                principal,
                action,
                detail,
                sender_id=profile.sender_id,
                inputs={"profile": dataclasses.asdict(profile), **inputs},
            )
        )
        await admin.stores.put_senders([profile])

    @routes.get("/senders", summary="Every sender profile")
    async def list_senders(principal: reader) -> list[SenderView]:
        return [await view(profile) for profile in await admin.stores.senders()]

    @routes.get("/senders/{sender_id}", summary="A sender profile, its pause and DKIM selectors")
    async def get_sender(sender_id: SenderId, principal: reader) -> SenderView:
        return await view(await existing(sender_id))

    @routes.put(
        "/senders/{sender_id}",
        summary="Create or replace a sender profile",
        responses={201: {"description": "Created"}, 409: {"description": "Domain or user taken"}},
    )
    async def put_sender(
        sender_id: SenderId, body: SenderBody, principal: operator, response: Response
    ) -> SenderView:
        if body.sender_id is not None and body.sender_id != sender_id:
            raise HTTPException(
                422, f"body.sender_id {body.sender_id!r} is not the path's {sender_id!r}"
            )
        fields = body.model_dump() | {"sender_id": sender_id}
        try:
            profile = SenderRow.model_validate(fields).to_profile()
        except ValidationError as exc:
            raise HTTPException(422, f"path.sender_id: {exc.errors()[0]['msg']}") from None
        before = await admin.stores.sender(sender_id)
        verb = "create" if before is None else "replace"
        await store(principal, profile, "sender-put", f"{verb} sender profile {sender_id!r}")
        response.status_code = 201 if before is None else 200
        return await view(profile)

    @routes.post("/senders/{sender_id}/domains", summary="Add a verified From domain")
    async def add_domain(
        sender_id: SenderId, body: DomainBody, principal: operator
    ) -> SenderChange:
        profile = await existing(sender_id)
        if body.domain in profile.verified_domains:
            return SenderChange(changed=False, sender=await view(profile))
        changed = revalidated(
            dataclasses.replace(profile, verified_domains=(*profile.verified_domains, body.domain))
        )
        await store(
            principal,
            changed,
            "sender-domain-add",
            f"add verified domain {body.domain!r} to sender {sender_id!r}",
            domain=body.domain,
        )
        return SenderChange(changed=True, sender=await view(changed))

    @routes.delete("/senders/{sender_id}/domains/{domain}", summary="Remove a verified From domain")
    async def remove_domain(sender_id: SenderId, domain: str, principal: operator) -> SenderChange:
        profile = await existing(sender_id)
        wanted = domain.strip().lower().rstrip(".")
        if wanted not in profile.verified_domains:
            raise HTTPException(404, f"{domain!r} is not a verified domain of sender {sender_id!r}")
        changed = revalidated(
            dataclasses.replace(
                profile,
                verified_domains=tuple(d for d in profile.verified_domains if d != wanted),
            )
        )
        await store(
            principal,
            changed,
            "sender-domain-remove",
            f"remove verified domain {wanted!r} from sender {sender_id!r}",
            domain=wanted,
        )
        return SenderChange(changed=True, sender=await view(changed))

    async def change_pause(
        principal: Principal, sender_id: str, action: PauseAction, reason: str
    ) -> SenderChange:
        profile = await existing(sender_id)
        await admin.record(
            admin.event(
                principal,
                f"sender-{action.value}",
                f"{action.value} the commercial stream of sender {sender_id!r}: {reason}",
                sender_id=sender_id,
                inputs={"reason": reason},
            )
        )
        change = PauseChange(sender_id, action, datetime.now(UTC), reason, "operator")
        stored = await admin.stores.change_pause(change)
        await record_changes(admin.stores, admin.audit)
        return SenderChange(changed=stored is not None, sender=await view(profile))

    @routes.post(
        "/senders/{sender_id}/pause",
        summary="Pause the sender's commercial stream",
        description="Its new commercial mail gets 451 4.7.1 and its queued commercial mail"
        " waits; transactional mail flows. `changed` is false when it already was paused.",
    )
    async def pause(
        sender_id: SenderId, principal: operator, body: ReasonBody | None = None
    ) -> SenderChange:
        reason = (body.reason if body else None) or "paused by the operator"
        return await change_pause(principal, sender_id, PauseAction.PAUSE, reason)

    @routes.post(
        "/senders/{sender_id}/resume",
        summary="Resume the sender's commercial stream",
        description="`changed` is false when it was not paused.",
    )
    async def resume(
        sender_id: SenderId, principal: operator, body: ReasonBody | None = None
    ) -> SenderChange:
        reason = (body.reason if body else None) or "resumed by the operator"
        return await change_pause(principal, sender_id, PauseAction.RESUME, reason)

    return routes
