"""`GET /api/v1/stats` (roles operator and compliance): the list-health figures of each sender
over the last day and the last 7 days, and per destination (recipient domain), with the
mailbox providers' thresholds (MBP-COMPLAINT-RATE). What is counted: relay.stores.stats.

Per sender: accepted recipients, refused by rule, delivered, deferred attempts, hard and soft
bounces, complaints, unsubscribes; bounce rates over accepted, complaint and unsubscribe rates
over delivered. Per destination only delivery outcomes are known: delivered, deferred, hard and
soft bounces, the hard bounce rate over recipients whose delivery ended there (delivered + hard
bounced) and the deferral rate over attempts.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from relay.api.admin import Admin
from relay.api.auth import READERS, Principal
from relay.stores.stats import BOUNCE_WARN, COMPLAINT_PAUSE, COMPLAINT_WARN, Figures

__all__ = ["WINDOWS", "StatsReport", "router"]

WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7)}


class Thresholds(BaseModel):
    rule: str = "MBP-COMPLAINT-RATE"
    complaint_warn: float = Field(default=COMPLAINT_WARN, description="Gmail's target (0.1 %).")
    complaint_pause: float = Field(
        default=COMPLAINT_PAUSE,
        description="Gmail's and Yahoo's maximum (0.3 %); relay pauses there.",
    )
    bounce_warn: float = Field(
        default=BOUNCE_WARN, description="Hard bounces over accepted: the usual ESP guidance."
    )


class SenderWindow(BaseModel):
    accepted: int
    refused: int = Field(description="Recipients refused or deferred by a policy rule.")
    refusals: dict[str, int] = Field(description="Rule id -> recipients refused by it.")
    delivered: int
    deferred: int = Field(description="Delivery attempts that failed for now.")
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int
    hard_bounce_rate: float | None = Field(description="Hard bounces / accepted.")
    soft_bounce_rate: float | None = Field(description="Soft bounces / accepted.")
    complaint_rate: float | None = Field(description="Complaints / delivered.")
    unsubscribe_rate: float | None = Field(description="Unsubscribes / delivered.")
    complaint_level: Literal["warn", "pause"] | None
    bounce_level: Literal["warn"] | None


class DestinationWindow(BaseModel):
    delivered: int
    deferred: int
    hard_bounces: int
    soft_bounces: int
    hard_bounce_rate: float | None = Field(description="Hard bounces / (delivered + hard).")
    deferral_rate: float | None = Field(description="Deferred / (delivered + hard + deferred).")


class DestinationStats(BaseModel):
    destination: str
    windows: dict[str, DestinationWindow]


class SenderStats(BaseModel):
    sender_id: str
    windows: dict[str, SenderWindow]
    destinations: list[DestinationStats]


class StatsReport(BaseModel):
    at: datetime
    thresholds: Thresholds
    senders: list[SenderStats]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def sender_window(figures: Figures) -> SenderWindow:
    level = figures.complaint_level
    bounce = figures.hard_bounce_rate
    return SenderWindow(
        accepted=figures.accepted,
        refused=figures.refused,
        refusals=dict(figures.refusals),
        delivered=figures.delivered,
        deferred=figures.deferred,
        hard_bounces=figures.hard_bounces,
        soft_bounces=figures.soft_bounces,
        complaints=figures.complaints,
        unsubscribes=figures.unsubscribes,
        hard_bounce_rate=bounce,
        soft_bounce_rate=figures.soft_bounce_rate,
        complaint_rate=figures.complaint_rate,
        unsubscribe_rate=figures.unsubscribe_rate,
        complaint_level=level.value if level else None,
        bounce_level="warn" if bounce is not None and bounce >= BOUNCE_WARN else None,
    )


def destination_window(figures: Figures) -> DestinationWindow:
    ended = figures.delivered + figures.hard_bounces
    return DestinationWindow(
        delivered=figures.delivered,
        deferred=figures.deferred,
        hard_bounces=figures.hard_bounces,
        soft_bounces=figures.soft_bounces,
        hard_bounce_rate=_rate(figures.hard_bounces, ended),
        deferral_rate=_rate(figures.deferred, ended + figures.deferred),
    )


def router(admin: Admin) -> APIRouter:
    routes = APIRouter(tags=["stats"])
    stats = admin.stores.stats

    @routes.get("/stats", summary="List-health figures per sender and destination")
    async def figures(
        principal: Annotated[Principal, Depends(admin.auth.allow(*READERS))],
        sender_id: Annotated[str | None, Query(description="Only this sender profile.")] = None,
    ) -> StatsReport:
        now = datetime.now(UTC)
        senders: dict[str, dict[str, Figures]] = {}
        destinations: dict[str, dict[str, dict[str, Figures]]] = {}
        if sender_id is not None:
            senders[sender_id] = {}
        for name, window in WINDOWS.items():
            found = await stats.figures(window, now, sender_id=sender_id)
            for (sender, _), part in found.items():
                windows = senders.setdefault(sender, {})
                windows[name] = windows.get(name, Figures()) + part
            by_destination = await stats.destinations(window, now, sender_id=sender_id)
            for (sender, destination), part in by_destination.items():
                senders.setdefault(sender, {})
                destinations.setdefault(sender, {}).setdefault(destination, {})[name] = part
        return StatsReport(
            at=now,
            thresholds=Thresholds(),
            senders=[
                SenderStats(
                    sender_id=sender,
                    windows={
                        name: sender_window(senders[sender].get(name, Figures()))
                        for name in WINDOWS
                    },
                    destinations=[
                        DestinationStats(
                            destination=destination,
                            windows={
                                name: destination_window(windows.get(name, Figures()))
                                for name in WINDOWS
                            },
                        )
                        for destination, windows in sorted(destinations.get(sender, {}).items())
                    ],
                )
                for sender in sorted(senders)
            ],
        )

    return routes
