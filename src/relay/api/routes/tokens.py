"""`GET /api/v1/token`: which token a request carries, its role and sender: a client's check
that it was given the token it needs."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from relay.api.admin import Admin
from relay.api.auth import ANYONE, Principal
from relay.stores.models import ApiRole

__all__ = ["router"]


class TokenInfo(BaseModel):
    token_id: str
    name: str
    role: ApiRole
    sender_id: str | None


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["tokens"])

    @routes.get("/token", summary="The token this request carries")
    async def whoami(
        principal: Annotated[Principal, Depends(admin.auth.allow(*ANYONE))],
    ) -> TokenInfo:
        return TokenInfo(
            token_id=principal.token_id,
            name=principal.name,
            role=principal.role,
            sender_id=principal.sender_id,
        )

    return routes
