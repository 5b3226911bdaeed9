"""`GET /report` (roles operator and compliance): the compliance officer's HTML page over a
period, per sender: the rules that refused or fixed mail with counts and citations, how fast
unsubscribe requests were honoured, complaint and bounce rates against the mailbox providers'
thresholds, and a chart of the daily volume (relay.api.report_page).

The period is `since`..`until` (until defaults to now), or the `days` before `until`. The audit
log is read in a worker thread; the rates come from the list-health figures (whole hours).
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse

from relay.api.admin import Admin
from relay.api.auth import READERS, Principal
from relay.api.report_page import SenderReport, render
from relay.audit.query import AuditQuery, SenderFacts, report_facts
from relay.stores.stats import Figures

__all__ = ["router"]

MAX_DAYS = 366


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["report"])
    directory = admin.audit.directory
    stats = admin.stores.stats

    async def totals(window: timedelta, end: datetime, sender_id: str | None) -> dict[str, Figures]:
        every: dict[str, Figures] = {}
        for (sender, _), part in (await stats.figures(window, end, sender_id=sender_id)).items():
            every[sender] = every.get(sender, Figures()) + part
        return every

    @routes.get(
        "/report",
        summary="The compliance report (HTML)",
        response_class=HTMLResponse,
        responses={200: {"content": {"text/html": {}}}},
    )
    async def report(
        principal: Annotated[Principal, Depends(admin.auth.allow(*READERS))],
        sender_id: Annotated[str | None, Query(description="Only this sender profile.")] = None,
        days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Length of the period.")] = 30,
        since: Annotated[datetime | None, Query(description="Start (instead of days).")] = None,
        until: Annotated[datetime | None, Query(description="End (default: now).")] = None,
    ) -> HTMLResponse:
        now = datetime.now(UTC)
        end = _utc(until) if until is not None else now
        start = _utc(since) if since is not None else end - timedelta(days=days)
        if start >= end:
            raise HTTPException(422, "the period is empty: since must come before until")
        if end - start > timedelta(days=MAX_DAYS):
            raise HTTPException(422, f"the period is longer than {MAX_DAYS} days")
        query = AuditQuery(sender_id=sender_id, since=start, until=end)
        facts = await asyncio.to_thread(lambda: report_facts(query.records(directory)))
        last = min(end, now) - timedelta(microseconds=1)
        windows = {
            "period": await totals(end - start, end - timedelta(microseconds=1), sender_id),
            "last day": await totals(timedelta(days=1), last, sender_id),
            "last 7 days": await totals(timedelta(days=7), last, sender_id),
        }
        senders = sorted(set(facts) | set(windows["period"]))
        if sender_id is not None:
            senders = [sender_id]
        reports = [
            SenderReport(
                sender,
                facts.get(sender, SenderFacts()),
                {label: figures.get(sender, Figures()) for label, figures in windows.items()},
            )
            for sender in senders
        ]
        page = render(reports, start, end, now)
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    return routes
