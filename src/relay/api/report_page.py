"""The compliance report as one HTML page: server-rendered, no script, nothing fetched from
elsewhere, printable. Every value is escaped here (rule citations are ours, but sender ids,
campaigns and audit details may come from senders' headers).

Per sender and period: the rules that refused, deferred, fixed or warned (counts, citations);
how fast unsubscribe requests were honoured (request -> first refused attempt to mail that
recipient); complaint and bounce rates against the mailbox providers' thresholds; and an inline
SVG chart of the recipients accepted and refused by a rule each day.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

from relay import __version__
from relay.audit.query import Honouring, SenderFacts
from relay.stores.stats import BOUNCE_WARN, COMPLAINT_PAUSE, COMPLAINT_WARN, Figures

__all__ = ["SenderReport", "render"]


@dataclass(frozen=True, slots=True)
class SenderReport:
    sender_id: str
    facts: SenderFacts
    rates: Mapping[str, Figures]  # window label ("period", "last 7 days"...) -> figures


_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1b1b1b; margin: 2em auto; max-width: 70em;
       padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #444; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.05em; margin: 1.4em 0 .4em; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; }
th, td { border: 1px solid #bbb; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.meta { color: #555; }
.ok { color: #1a6b1a; } .warn { color: #8a5a00; font-weight: bold; }
.bad { color: #a00; font-weight: bold; }
svg { max-width: 100%; height: auto; }
.legend span { display: inline-block; width: .9em; height: .9em; margin: 0 .3em 0 1em;
               vertical-align: middle; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  section.sender { page-break-before: always; }
  section.sender:first-of-type { page-break-before: auto; }
  table, svg { page-break-inside: avoid; }
  th { background: none; }
}
"""

_NONE = "&ndash;"  # an HTML entity: shown as a dash, never escaped again
_ACCEPTED_COLOUR = "#4a7ab5"
_REFUSED_COLOUR = "#c0392b"


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _percent(rate: float | None) -> str:
    return _NONE if rate is None else f"{rate:.2%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return _NONE
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _complaint_status(rate: float | None) -> str:
    if rate is None:
        return '<span class="meta">nothing delivered</span>'
    if rate >= COMPLAINT_PAUSE:
        return f'<span class="bad">at or above the {COMPLAINT_PAUSE:.1%} maximum</span>'
    if rate >= COMPLAINT_WARN:
        return f'<span class="warn">above the {COMPLAINT_WARN:.1%} target</span>'
    return '<span class="ok">below the target</span>'


def _bounce_status(rate: float | None) -> str:
    if rate is None:
        return '<span class="meta">nothing accepted</span>'
    if rate >= BOUNCE_WARN:
        return f'<span class="warn">at or above {BOUNCE_WARN:.0%}</span>'
    return '<span class="ok">ok</span>'


def _rules(facts: SenderFacts) -> str:
    if not facts.rules:
        return "<p>No rule acted on this sender's mail in the period.</p>"
    order = {"reject": 0, "defer": 1, "fix": 2, "warn": 3}
    rows = sorted(facts.rules.values(), key=lambda r: (order[r.action], -r.records, r.rule_id))
    body = "".join(
        f"<tr><td><code>{_e(r.rule_id)}</code></td><td>{_e(r.action)}</td>"
        f'<td class="n">{r.records}</td><td class="n">{r.refused}</td>'
        f"<td>{_e(r.citation) if r.citation else _NONE}</td></tr>"
        for r in rows
    )
    return (
        "<table><thead><tr><th>rule</th><th>action</th><th>records</th>"
        "<th>recipients refused by its reply</th><th>citation</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _unsubscribes(requests: Sequence[Honouring]) -> str:
    if not requests:
        return "<p>No unsubscribe request in the period.</p>"
    delays = [delay for r in requests if (delay := r.delay) is not None]
    summary = (
        f"<p>{len(requests)} request(s); {len(delays)} followed by a refused attempt to mail the"
        f" recipient: median {_duration(statistics.median(delays) if delays else None)},"
        f" longest {_duration(max(delays) if delays else None)}. Requests without one were not"
        " tried again in the period.</p>"
    )
    body = "".join(
        f"<tr><td><code>{_e(r.recipient_hash[:16])}…</code></td>"
        f"<td>{_e(r.requested.isoformat(timespec='seconds'))}</td>"
        f"<td>{_e(r.blocked.isoformat(timespec='seconds')) if r.blocked else _NONE}</td>"
        f'<td class="n">{_duration(r.delay)}</td>'
        f'<td class="n">{r.accepted_between}</td></tr>'
        for r in sorted(requests, key=lambda r: r.requested)
    )
    return (
        summary + "<table><thead><tr><th>recipient (keyed hash)</th><th>requested (UTC)</th>"
        "<th>first refused attempt</th><th>honoured after</th>"
        "<th>accepted in between (other lists)</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _rates(rates: Mapping[str, Figures]) -> str:
    body = "".join(
        f"<tr><th>{_e(label)}</th>"
        f'<td class="n">{f.accepted}</td><td class="n">{f.delivered}</td>'
        f'<td class="n">{f.complaints}</td><td class="n">{_percent(f.complaint_rate)}</td>'
        f"<td>{_complaint_status(f.complaint_rate)}</td>"
        f'<td class="n">{f.hard_bounces}</td><td class="n">{_percent(f.hard_bounce_rate)}</td>'
        f"<td>{_bounce_status(f.hard_bounce_rate)}</td>"
        f'<td class="n">{f.soft_bounces}</td><td class="n">{_percent(f.soft_bounce_rate)}</td>'
        f'<td class="n">{f.unsubscribes}</td></tr>'
        for label, f in rates.items()
    )
    return (
        "<table><thead><tr><th>window</th><th>accepted</th><th>delivered</th>"
        "<th>complaints</th><th>complaint rate</th><th>against thresholds</th>"
        "<th>hard bounces</th><th>hard bounce rate</th><th>against threshold</th>"
        "<th>soft bounces</th><th>soft bounce rate</th><th>unsubscribes</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
        f'<p class="meta">MBP-COMPLAINT-RATE: complaints over delivered recipients; Gmail and'
        f" Yahoo target below {COMPLAINT_WARN:.1%} and stop delivering at {COMPLAINT_PAUSE:.1%}"
        " (relay pauses the marketing stream there). Bounce rates over accepted recipients;"
        f" hard bounces at {BOUNCE_WARN:.0%} or more suggest a stale or harvested list"
        " (US-HARVEST).</p>"
    )


def _chart(days: Mapping[date, Sequence[int]], first: date, last: date) -> str:
    """Bars of accepted and refused recipients per day, first..last, as inline SVG."""
    span = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    counts = [days.get(day, (0, 0)) for day in span]
    top = max((max(c[0], c[1]) for c in counts), default=0) or 1
    width, height, left, bottom = 900, 260, 50, 40
    plot_w, plot_h = width - left - 10, height - bottom - 10
    slot = plot_w / len(span)
    bar = max(slot / 2 - 1, 0.5)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img"'
        ' aria-labelledby="chart-title"><title id="chart-title">Recipients accepted and refused'
        " by a rule per day (UTC)</title>",
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{left + plot_w}" y2="{10 + plot_h}"'
        ' stroke="#444"/>',
        f'<line x1="{left}" y1="10" x2="{left}" y2="{10 + plot_h}" stroke="#444"/>',
    ]
    for fraction in (0.5, 1.0):
        y = 10 + plot_h - plot_h * fraction
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{round(top * fraction)}</text>"
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
        )
    label_every = max(1, len(span) // 10)
    for index, (day, (accepted, refused)) in enumerate(zip(span, counts, strict=True)):
        x = left + index * slot + 1
        for offset, value, colour, what in (
            (0.0, accepted, _ACCEPTED_COLOUR, "accepted"),
            (bar, refused, _REFUSED_COLOUR, "refused"),
        ):
            if value:
                h = plot_h * value / top
                parts.append(
                    f'<rect x="{x + offset:.1f}" y="{10 + plot_h - h:.1f}" width="{bar:.1f}"'
                    f' height="{h:.1f}" fill="{colour}"><title>{day.isoformat()}: {value}'
                    f" {what}</title></rect>"
                )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 25}" font-size="11"'
                f' text-anchor="middle">{day.strftime("%m-%d")}</text>'
            )
    parts.append("</svg>")
    legend = (
        f'<p class="legend"><span style="background:{_ACCEPTED_COLOUR}"></span>accepted'
        f'<span style="background:{_REFUSED_COLOUR}"></span>refused by a rule</p>'
    )
    total_accepted = sum(c[0] for c in counts)
    total_refused = sum(c[1] for c in counts)
    return (
        "".join(parts)
        + legend
        + f"<p>In the period: {total_accepted} recipients accepted, {total_refused} refused by a"
        " rule.</p>"
    )


def render(
    reports: Sequence[SenderReport], since: datetime, until: datetime, generated: datetime
) -> str:
    """The whole page for `reports` over since <= time < until."""
    first, last = since.date(), (until - timedelta(microseconds=1)).date()
    sections = "".join(
        f'<section class="sender"><h2>Sender <code>{_e(report.sender_id)}</code></h2>'
        f"<h3>Rules that acted on its mail</h3>{_rules(report.facts)}"
        "<h3>Unsubscribe requests honoured</h3>"
        f"{_unsubscribes(list(report.facts.unsubscribes.values()))}"
        f"<h3>Complaint and bounce rates</h3>{_rates(report.rates)}"
        f"<h3>Daily volume</h3>{_chart(report.facts.days, first, last)}</section>"
        for report in reports
    )
    if not reports:
        sections = "<p>No mail of any sender in the period.</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>relay compliance report {_e(first.isoformat())} &ndash; {_e(last.isoformat())}"
        f"</title><style>{_CSS}</style></head><body>"
        "<h1>Compliance report</h1>"
        f'<p class="meta">Period {_e(since.isoformat(timespec="seconds"))} to'
        f" {_e(until.isoformat(timespec='seconds'))} (UTC). Generated"
        f" {_e(generated.isoformat(timespec='seconds'))} by relay {_e(__version__)} from this"
        " node's audit log and list-health figures.</p>"
        f"{sections}</body></html>"
    )
