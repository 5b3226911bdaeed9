"""`GET /metrics`: the node's metrics in the Prometheus text format (relay.metrics), for a
scraper holding an operator or compliance token (Prometheus: `authorization: {credentials:
...}` in the scrape config)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from relay.api.admin import Admin
from relay.api.auth import READERS, Principal
from relay.metrics import QUEUE

__all__ = ["router"]


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["metrics"])
    reader = Depends(admin.auth.allow(*READERS))

    @routes.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics(principal: Annotated[Principal, reader]) -> Response:
        QUEUE.update(await admin.queue_figures())
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return routes
