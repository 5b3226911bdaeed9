"""The admin API's routes, one module per thing managed:

suppressions   list, add, remove, look up, import and export suppression entries
consent        consent records, withdrawal, GDPR erasure, data-subject requests
senders        sender profiles, verified domains, DKIM selectors, pause and resume
queue          per-destination state, messages: hold, release, bounce, delete
audit          query, export (streamed) and verify the audit log
stats          per sender and destination figures and rates
report         /report: the compliance officer's HTML page
metrics        /metrics: Prometheus text format
"""

from fastapi import APIRouter

from relay.api.admin import Admin
from relay.api.routes import (
    audit,
    consent,
    metrics,
    queue,
    report,
    senders,
    stats,
    suppressions,
    tokens,
)

__all__ = ["admin_routers"]


def admin_routers(admin: Admin) -> list[tuple[APIRouter, bool]]:
    """Every admin router, each with whether it lives under /api/v1."""
    return [
        (tokens.router(admin), True),
        (suppressions.router(admin), True),
        (consent.router(admin), True),
        (senders.router(admin), True),
        (queue.router(admin), True),
        (audit.router(admin), True),
        (stats.router(admin), True),
        (report.router(admin), False),
        (metrics.router(admin), False),
    ]
