"""The one-month clock of data subjects' requests (EU-RESPONSE-1M, GDPR Art. 12(3)): when a
request is due, when it is flagged, and a watcher that logs the flagged ones every hour, so that
log monitoring sees a deadline coming without anyone polling `GET /api/v1/requests`."""

from __future__ import annotations

import asyncio
import calendar
import logging
from datetime import UTC, datetime, timedelta

from relay.errors import StoreUnavailable
from relay.stores.base import Stores

__all__ = ["ALERT_DAYS", "CHECK_INTERVAL", "due_date", "watch_requests"]

log = logging.getLogger("relay.api.requests")

ALERT_DAYS = 5  # an open request this close to its due date (or past it) is flagged
CHECK_INTERVAL = 3600.0  # seconds between looks at the open requests
_PAGE = 500


def due_date(received_at: datetime) -> datetime:
    """One calendar month after `received_at` (the last day of a shorter month: 31 January is
    due on 28 or 29 February)."""
    year, month = received_at.year + received_at.month // 12, received_at.month % 12 + 1
    day = min(received_at.day, calendar.monthrange(year, month)[1])
    return received_at.replace(year=year, month=month, day=day)


async def log_flagged_requests(stores: Stores, now: datetime) -> int:
    """Log a warning for every open request due within ALERT_DAYS days or overdue; how many."""
    horizon = now + timedelta(days=ALERT_DAYS)
    flagged = 0
    after: tuple[datetime, str] | None = None
    while True:
        page = await stores.subject_requests_page(True, None, after, _PAGE)
        for request in page:
            if request.due_at > horizon:
                return flagged
            flagged += 1
            state = "overdue since" if request.due_at <= now else "due"
            log.warning(
                "data-subject request %s (%s, sender %s) is %s %s; answer it and mark it"
                " complete: POST /api/v1/requests/%s/complete (EU-RESPONSE-1M)",
                request.request_id,
                request.kind.value,
                request.sender_id,
                state,
                request.due_at.isoformat(timespec="minutes"),
                request.request_id,
            )
        if len(page) < _PAGE:
            return flagged
        after = page[-1].due_at, page[-1].request_id


async def watch_requests(stores: Stores, interval: float = CHECK_INTERVAL) -> None:
    """Run `log_flagged_requests` now and every `interval` seconds until cancelled."""
    while True:
        try:
            await log_flagged_requests(stores, datetime.now(UTC))
        except StoreUnavailable as exc:
            log.error("cannot check data-subject request deadlines: %s", exc)
        await asyncio.sleep(interval)
