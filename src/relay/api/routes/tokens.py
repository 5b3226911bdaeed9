"""Bearer tokens through the API.

    GET    /token          the token this request carries: role, sender (any role)
    GET    /tokens         every token, never a secret (operator)
    POST   /tokens         make one; the answer is the only time its secret is shown (operator)
    DELETE /tokens/{id}    revoke one at once (operator)

`relay tokens create` makes the first operator token; changes made here are audited.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from relay.api.admin import Admin
from relay.api.auth import ANYONE, OPERATOR, Principal, new_token
from relay.stores.models import ApiRole, ApiToken

__all__ = ["router"]


class TokenInfo(BaseModel):
    token_id: str
    name: str
    role: ApiRole
    sender_id: str | None
    created_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None

    @classmethod
    def of(cls, token: ApiToken | Principal) -> "TokenInfo":
        return cls.model_validate(token, from_attributes=True)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[\w.@:-]+$")
    role: ApiRole
    sender_id: str | None = Field(None, description="The sender of a mailer token.")

    @model_validator(mode="after")
    def _mailer_has_a_sender(self) -> "TokenIn":
        if (self.role is ApiRole.MAILER) != (self.sender_id is not None):
            raise ValueError("sender_id is required for a mailer token and refused for others")
        return self


class TokenCreated(TokenInfo):
    token: str = Field(description="The bearer token; shown this once, keep it secret.")


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["tokens"])
    anyone = Depends(admin.auth.allow(*ANYONE))
    operator = Depends(admin.auth.allow(*OPERATOR))

    @routes.get("/token", summary="The token this request carries")
    async def whoami(principal: Annotated[Principal, anyone]) -> TokenInfo:
        return TokenInfo.of(principal)

    @routes.get("/tokens", summary="Every token (never their secrets)")
    async def list_tokens(principal: Annotated[Principal, operator]) -> list[TokenInfo]:
        return [TokenInfo.of(token) for token in await admin.stores.api_tokens()]

    @routes.post("/tokens", status_code=201, summary="Make a token (its secret is shown once)")
    async def create_token(
        body: TokenIn, principal: Annotated[Principal, operator]
    ) -> TokenCreated:
        if body.sender_id is not None and await admin.stores.sender(body.sender_id) is None:
            raise HTTPException(422, f"body.sender_id: no sender profile {body.sender_id!r}")
        if any(token.name == body.name for token in await admin.stores.api_tokens()):
            raise HTTPException(409, f"body.name: a token named {body.name!r} exists already")
        secret, token = new_token(body.name, body.role, body.sender_id, datetime.now(UTC))
        await admin.record(
            admin.event(
                principal,
                "token-create",
                f"token {token.token_id} {token.name!r} made with role {token.role.value}",
                sender_id=token.sender_id,
                inputs={"new_token_id": token.token_id, "new_role": token.role.value},
            )
        )
        await admin.stores.add_api_token(token)
        return TokenCreated(**TokenInfo.of(token).model_dump(), token=secret)

    @routes.delete("/tokens/{token_id}", summary="Revoke a token")
    async def revoke_token(token_id: str, principal: Annotated[Principal, operator]) -> TokenInfo:
        known = {token.token_id: token for token in await admin.stores.api_tokens()}
        if token_id not in known:
            raise HTTPException(404, f"no API token {token_id!r}")
        if known[token_id].revoked_at is None:
            await admin.record(
                admin.event(
                    principal,
                    "token-revoke",
                    f"token {token_id} {known[token_id].name!r} revoked",
                    inputs={"revoked_token_id": token_id},
                )
            )
        revoked = await admin.stores.revoke_api_token(token_id, datetime.now(UTC))
        assert revoked is not None
        return TokenInfo.of(revoked)

    return routes
