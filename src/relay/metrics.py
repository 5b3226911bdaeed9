"""The node's Prometheus metrics (prometheus-client), served at `/metrics`.

    relay_submission_seconds            end of DATA -> reply (policy, fixes, signing, audit,
                                        spool), by reply class (2xx, 4xx, 5xx)
    relay_policy_verdicts_total         decisions written to the audit log at RCPT and DATA,
                                        by stage, action and rule id ("-": no rule)
    relay_deliveries_total              recipient outcomes of delivery attempts, by result
                                        (delivered, deferred, bounced, expired)
    relay_http_request_seconds          admin API and unsubscribe requests, by method, route
                                        template and status
    relay_queue_*, relay_destination_*  the queue at scrape time (QueueCollector)

plus prometheus-client's own process metrics (CPU seconds, resident memory, open files).
The metric objects live in the default registry, as prometheus-client intends: one process is
one node.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from relay.audit.records import AuditEvent
from relay.policy.standing import AuditSink
from relay.spool.records import Outcome, RecipientState

__all__ = [
    "DELIVERIES",
    "HTTP_REQUESTS",
    "QUEUE",
    "SUBMISSIONS",
    "VERDICTS",
    "CountingAudit",
    "DestinationFigures",
    "QueueCollector",
    "QueueFigures",
    "count_outcomes",
]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SUBMISSIONS = Histogram(
    "relay_submission_seconds",
    "Time from the end of DATA to relay's reply: policy, fixes, signing, audit and spool",
    ["reply"],
    buckets=_LATENCY_BUCKETS,
)
VERDICTS = Counter(
    "relay_policy_verdicts",
    "Policy decisions at RCPT and DATA written to the audit log",
    ["stage", "action", "rule"],
)
DELIVERIES = Counter("relay_deliveries", "Recipient outcomes of delivery attempts", ["result"])
HTTP_REQUESTS = Histogram(
    "relay_http_request_seconds",
    "HTTP requests to the admin API and the unsubscribe pages",
    ["method", "route", "status"],
    buckets=_LATENCY_BUCKETS,
)

_RESULTS = {
    RecipientState.DELIVERED: "delivered",
    RecipientState.QUEUED: "deferred",
    RecipientState.BOUNCED: "bounced",
    RecipientState.EXPIRED: "expired",
}


def count_outcomes(outcomes: Iterable[Outcome]) -> None:
    for _, state, _, _ in outcomes:
        DELIVERIES.labels(_RESULTS.get(state, state.value)).inc()


class CountingAudit:
    """An audit sink that counts the policy verdicts it passes on to `audit`."""

    def __init__(self, audit: AuditSink) -> None:
        self._audit = audit

    async def append(self, events: Sequence[AuditEvent]) -> Sequence[str]:
        hashes = await self._audit.append(events)
        for event in events:
            if event.stage in ("rcpt", "data"):
                VERDICTS.labels(event.stage, event.action, event.rule_id or "-").inc()
        return hashes


@dataclass(frozen=True, slots=True)
class DestinationFigures:
    name: str
    waiting: int  # jobs waiting at the destination
    active: int  # connections in use
    pace: float  # share of its configured limits (1.0: full speed)
    suspended: bool
    paused_senders: int


@dataclass(frozen=True, slots=True)
class QueueFigures:
    messages: int  # messages with recipients still queued
    recipients: int  # recipients still queued
    held: int  # messages held by an operator
    sleeping: int  # jobs waiting for their retry time or send-time window
    running: int  # delivery attempts in progress
    destinations: list[DestinationFigures] = field(default_factory=list)


class QueueCollector(Collector):
    """Gauges of the queue as last `update`d: the /metrics route gathers the figures in the
    event loop (the scheduler is not thread-safe, the spool index is read in its own thread)
    and updates them just before the registry is collected."""

    def __init__(self) -> None:
        self._figures = QueueFigures(0, 0, 0, 0, 0)

    def update(self, figures: QueueFigures) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self._figures
        for name, help_text, value in (
            ("relay_queue_messages", "Messages with recipients still queued", figures.messages),
            ("relay_queue_recipients", "Recipients still queued", figures.recipients),
            ("relay_queue_held_messages", "Messages held by an operator", figures.held),
            ("relay_queue_sleeping_jobs", "Jobs waiting for their retry time", figures.sleeping),
            ("relay_delivery_attempts_running", "Delivery attempts in progress", figures.running),
        ):
            yield GaugeMetricFamily(name, help_text, value)
        families = {
            "waiting": GaugeMetricFamily(
                "relay_destination_waiting_jobs",
                "Jobs due at a destination",
                labels=["destination"],
            ),
            "active": GaugeMetricFamily(
                "relay_destination_connections", "Connections in use", labels=["destination"]
            ),
            "pace": GaugeMetricFamily(
                "relay_destination_pace_ratio",
                "Share of the destination's configured limits in force after backoff",
                labels=["destination"],
            ),
            "suspended": GaugeMetricFamily(
                "relay_destination_suspended",
                "1 while the destination is suspended by a backoff rule",
                labels=["destination"],
            ),
            "paused": GaugeMetricFamily(
                "relay_destination_paused_senders",
                "Senders paused at the destination by a block-list reply",
                labels=["destination"],
            ),
        }
        for destination in figures.destinations:
            labels = [destination.name]
            families["waiting"].add_metric(labels, destination.waiting)
            families["active"].add_metric(labels, destination.active)
            families["pace"].add_metric(labels, destination.pace)
            families["suspended"].add_metric(labels, int(destination.suspended))
            families["paused"].add_metric(labels, destination.paused_senders)
        yield from families.values()


QUEUE = QueueCollector()
REGISTRY.register(QUEUE)
