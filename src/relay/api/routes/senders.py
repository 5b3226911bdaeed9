"""(to be written)"""

from fastapi import APIRouter

from relay.api.admin import Admin

__all__ = ["router"]


def router(admin: Admin) -> APIRouter:
    return APIRouter(tags=["senders"])
