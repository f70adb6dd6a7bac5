"""The consistency report as CSV (one figure a row) and as one self-contained HTML page.

The HTML page has no script, font, style sheet or image outside itself: the charts are inline SVG, the styles one
`<style>` element, so the file opens offline and can be mailed as it is."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from html import escape
from typing import Any

import msgspec

from schemas import ChannelFigures, ConsistencyReport, Deviation, Quantiles
from unify.audit.params import CHANNELS
from unify.audit.report import CHANNEL_WORDS, HISTOGRAM_EDGES, duration_text

CSV_COLUMNS = ("section", "channel", "reason", "other", "metric", "value", "note")
ALL = "all"
COLORS = {"voice": "#3b6fb6", "sms": "#7a4eb0", "email": "#d2772b", "chat": "#2e9a6a", ALL: "#666666"}


# ---------------------------------------------------------------------------------------------------------------
# CSV


def _flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else key, item)
    else:
        yield prefix, value


def channel_rows(figures: ChannelFigures) -> Iterator[tuple[str, Any]]:
    """(metric, value) for every figure of a channel, nested figures as dotted names (`per_leg.queue_wait.median`)."""
    for metric, value in _flatten("", msgspec.to_builtins(figures)):
        if metric != "channel":
            yield metric, value


def csv_rows(report: ConsistencyReport) -> Iterator[tuple[Any, ...]]:
    """The rows of the CSV form, without the header: (section, channel, reason, other, metric, value, note)."""
    period = msgspec.to_builtins(report)
    for key in ("from", "to", "generated_at", "channel", "reason", "queue", "repeat_window_days", "elapsed_seconds"):
        yield ("report", "", "", "", key, period[key], "")
    for metric, value in _flatten("thresholds", period["thresholds"]):
        yield ("report", "", "", "", metric, value, "")
    for figures in (report.overall, *report.channels):
        for metric, value in channel_rows(figures):
            yield ("channel", figures.channel or ALL, "", "", metric, value, "")
    for s in report.switches:
        yield ("switch", s.from_channel, "", s.to_channel, "repeats", s.repeats, "")
    for p in report.promises:
        for metric in ("made", "kept", "broken", "overdue", "open", "kept_rate"):
            yield ("promise", ALL if p.overall else (p.channel or "none"), "", "", metric, getattr(p, metric), "")
    for r in report.reasons:
        for metric in ("contacts", "journeys", "resolved", "resolution_rate", "median_resolution_seconds"):
            yield ("reason", r.channel, r.reason, "", metric, getattr(r, metric), "")
    for section, deviations in (("deviation", report.deviations), ("too_few", report.too_few)):
        for d in deviations:
            for field in ("value", "others", "n", "others_n", "ratio", "difference", "statistic", "p_value"):
                yield (section, d.channel, d.reason or "", "", f"{d.metric}.{field}", getattr(d, field), d.text)
    for b in report.wait_histogram:
        upper = "" if b.to_seconds is None else f"{b.to_seconds:g}"
        yield ("histogram", b.channel, "", f"{b.from_seconds:g}-{upper}", b.metric, b.count, "")
    for metric, value in _flatten("", msgspec.to_builtins(report.identity)):
        yield ("identity", "", "", "", metric, value, "")


def render_csv(report: ConsistencyReport) -> str:
    """The report as CSV with a header row; empty cells for values that do not exist (a median of nothing)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(report):
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# HTML


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _spread(q: Quantiles) -> str:
    """Median / p90 of durations."""
    return f"{_sec(q.median)} / {_sec(q.p90)}"


def _sec(value: float | None) -> str:
    return "–" if value is None else duration_text(value, days="d")


def _name(channel: str | None) -> str:
    return "all channels" if channel in (None, ALL) else CHANNEL_WORDS.get(channel, channel)


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    fmt: Any,
    *,
    width: int = 560,
) -> str:
    """An inline SVG bar chart: one group of bars per category, one bar per series (name, colour, values)."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    top = max(values, default=0) or 1
    row_h, bar_h, label_w, value_w = 14 * len(series) + 10, 12, 90, 80
    plot_w = width - label_w - value_w
    height = 30 + row_h * len(categories) + 18 * len(series)
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" class="t">{escape(title)}</text>',
    ]
    for ci, category in enumerate(categories):
        y0 = 26 + ci * row_h
        parts.append(f'<text x="0" y="{y0 + row_h / 2 + 2:.0f}">{escape(_name(category))}</text>')
        for si, (_, color, vs) in enumerate(series):
            v = vs[ci]
            y = y0 + si * 14
            w = 0 if v is None else max(1.0, plot_w * v / top)
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 10}">{escape(fmt(v))}</text>')
    ly = 30 + row_h * len(categories)
    for si, (name, color, _) in enumerate(series):
        parts.append(f'<rect x="0" y="{ly + si * 18}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="18" y="{ly + si * 18 + 10}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(report: ConsistencyReport, metric: str, title: str) -> str:
    """Inline SVG: per channel, the share of its waits in each bucket (small multiples, one row per channel)."""
    buckets = len(HISTOGRAM_EDGES)
    counts: dict[str, list[int]] = {}
    for b in report.wait_histogram:
        if b.metric == metric:
            counts.setdefault(b.channel, [0] * buckets)[HISTOGRAM_EDGES.index(b.from_seconds)] += b.count
    labels = [f"<{_sec(HISTOGRAM_EDGES[1])}"] + [f"≥{_sec(e)}" for e in HISTOGRAM_EDGES[1:]]
    cell, row_h, label_w = 58, 64, 70
    width, height = label_w + cell * buckets, 24 + row_h * max(1, len(counts)) + 16
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" class="t">{escape(title)}</text>',
    ]
    for ri, channel in enumerate(c for c in CHANNELS if c in counts):
        row = counts[channel]
        total = sum(row) or 1
        y0 = 24 + ri * row_h
        parts.append(f'<text x="0" y="{y0 + row_h / 2:.0f}">{escape(_name(channel))}</text>')
        parts.append(f'<text x="0" y="{y0 + row_h / 2 + 12:.0f}" class="s">n={sum(row):,}</text>')
        for bi, count in enumerate(row):
            share = count / total
            h = (row_h - 16) * share
            x = label_w + bi * cell
            parts.append(
                f'<rect x="{x + 4}" y="{y0 + row_h - 12 - h:.1f}" width="{cell - 8}" height="{h:.1f}" '
                f'fill="{COLORS[channel]}"><title>{escape(labels[bi])}: {count:,} ({share:.0%})</title></rect>'
            )
            if share >= 0.005:
                parts.append(f'<text x="{x + 6}" y="{y0 + row_h - 14 - h:.1f}" class="s">{share:.0%}</text>')
    y = 24 + row_h * max(1, len(counts))
    for bi, label in enumerate(labels):
        parts.append(f'<text x="{label_w + bi * cell + 4}" y="{y + 8}" class="s">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def switch_matrix(report: ConsistencyReport) -> str:
    """Inline SVG heat map: rows the channel of the contact repeated, columns the channel of the repeat."""
    counts = {(s.from_channel, s.to_channel): s.repeats for s in report.switches}
    top = max(counts.values(), default=0) or 1
    cell, label_w, head = 72, 110, 40
    size = label_w + cell * len(CHANNELS)
    height = head + cell * len(CHANNELS) // 2 + 10
    parts = [
        f'<svg class="chart" role="img" width="{size}" height="{height}" viewBox="0 0 {size} {height}">',
        "<title>Channel switches: contact repeated (rows) → repeat (columns)</title>",
        '<text x="0" y="14" class="t">contact repeated ↓ / repeat →</text>',
    ]
    for ci, to in enumerate(CHANNELS):
        parts.append(f'<text x="{label_w + ci * cell + 6}" y="{head - 8}">{escape(_name(to))}</text>')
    for ri, src in enumerate(CHANNELS):
        y = head + ri * cell // 2
        parts.append(f'<text x="0" y="{y + 22}">{escape(_name(src))}</text>')
        for ci, to in enumerate(CHANNELS):
            n = counts.get((src, to), 0)
            alpha = 0.08 + 0.82 * n / top if n else 0.03
            parts.append(
                f'<rect x="{label_w + ci * cell}" y="{y}" width="{cell - 2}" height="{cell // 2 - 2}" '
                f'fill="#b0362c" fill-opacity="{alpha:.2f}"/>'
            )
            parts.append(f'<text x="{label_w + ci * cell + 8}" y="{y + 22}">{n:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _deviation_list(deviations: Sequence[Deviation], empty: str) -> str:
    if not deviations:
        return f"<p class='s'>{escape(empty)}</p>"
    return "<ul>" + "".join(f"<li>{escape(d.text)}</li>" for d in deviations) + "</ul>"


_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f4f4f4}
.chart{display:block;margin:10px 0}.chart text{font-size:11px;fill:#333}.chart .t{font-size:13px;font-weight:600}
.chart .s{font-size:9px;fill:#666}.s{color:#666;font-size:12px}li{margin:3px 0}.grid{display:flex;flex-wrap:wrap;
gap:18px}
"""


def render_html(report: ConsistencyReport) -> str:
    """The report as one HTML page: deviations in words, per-channel bars (rates, waits per leg against waits per
    journey), wait distributions, the channel-switch matrix, reasons × channels, promises and identity health."""
    chans = [c.channel or ALL for c in report.channels]
    figs = list(report.channels)
    filters = ", ".join(
        f"{k} = {v}" for k, v in (("channel", report.channel), ("reason", report.reason), ("queue", report.queue)) if v
    )
    t = report.thresholds
    rates = grouped_bars(
        "Rates per channel",
        chans,
        [
            ("repeat rate", "#b0362c", [f.repeat_rate for f in figs]),
            ("first-contact resolution", "#2e9a6a", [f.first_contact_resolution for f in figs]),
            ("transfer rate", "#3b6fb6", [f.transfer_rate for f in figs]),
            ("abandonment rate", "#d2772b", [f.abandonment_rate for f in figs]),
            ("unidentified share", "#999999", [f.unidentified_share for f in figs]),
        ],
        _pct,
    )
    waits = grouped_bars(
        "Median customer wait (queue + hold): one leg as the agent's record shows it, and the whole journey",
        chans,
        [
            ("per leg (median)", "#8fb3de", [f.per_leg.customer_wait.median for f in figs]),
            ("per journey (median)", "#1f4e8c", [f.per_journey.customer_wait.median for f in figs]),
            ("per leg (p90)", "#f2b48a", [f.per_leg.customer_wait.p90 for f in figs]),
            ("per journey (p90)", "#b0501a", [f.per_journey.customer_wait.p90 for f in figs]),
        ],
        _sec,
        width=640,
    )
    contacts = grouped_bars(
        "Contacts per channel",
        chans,
        [("contacts", "#555555", [float(f.contacts) for f in figs])],
        lambda v: f"{v:,.0f}",
    )
    channel_table = _table(
        [
            "channel",
            "contacts",
            "customers",
            "unidentified",
            "first answer (median / p90)",
            "queue wait per leg",
            "hold per leg",
            "queue wait per journey",
            "hold per journey",
            "customer wait per journey",
            "handle time",
            "transfer",
            "abandoned",
            "repeat",
            "FCR",
        ],
        [
            [
                _name(f.channel),
                f"{f.contacts:,}",
                f"{f.customers:,}",
                _pct(f.unidentified_share),
                _spread(f.first_answer),
                _spread(f.per_leg.queue_wait),
                _spread(f.per_leg.hold),
                _spread(f.per_journey.queue_wait),
                _spread(f.per_journey.hold),
                _spread(f.per_journey.customer_wait),
                _spread(f.handle),
                _pct(f.transfer_rate),
                _pct(f.abandonment_rate),
                _pct(f.repeat_rate),
                _pct(f.first_contact_resolution),
            ]
            for f in (*figs, report.overall)
        ],
    )
    reasons = _table(
        ["reason", "channel", "contacts", "journeys", "resolved", "resolution rate", "median time to resolution"],
        [
            [
                r.reason or "(none)",
                _name(r.channel),
                f"{r.contacts:,}",
                f"{r.journeys:,}",
                f"{r.resolved:,}",
                _pct(r.resolution_rate),
                _sec(r.median_resolution_seconds),
            ]
            for r in report.reasons
        ],
    )
    promises = _table(
        ["channel", "made", "kept", "broken", "overdue", "open", "kept rate"],
        [
            [
                "all channels" if p.overall else (_name(p.channel) if p.channel else "(no channel)"),
                f"{p.made:,}",
                f"{p.kept:,}",
                f"{p.broken:,}",
                f"{p.overdue:,}",
                f"{p.open:,}",
                _pct(p.kept_rate),
            ]
            for p in report.promises
        ],
    )
    i = report.identity
    body = f"""<h1>Cross-channel consistency audit</h1>
<p>Contacts from <b>{escape(report.from_.isoformat())}</b> to <b>{escape(report.to.isoformat())}</b>
{escape("(" + filters + ")") if filters else ""}; repeat window {report.repeat_window_days:g} days.
Generated {escape(report.generated_at.isoformat())} in {report.elapsed_seconds:.2f} s.</p>
<h2>Deviations</h2>
<p class="s">A channel against the other channels together, where both have at least {t.min_count} values, the
difference is at least {t.rate_difference:.0%} (rates, two-proportion z-test) or {t.wait_ratio:g}× (median waits,
Mood's median test), and p &lt; {t.significance:g}.</p>
{_deviation_list(report.deviations, "No channel differs from the others past the thresholds.")}
<p class="s">Past the threshold but seen on too few contacts to judge:</p>
{_deviation_list(report.too_few, "none")}
<h2>Per channel</h2>
{channel_table}
<div class="grid">{contacts}{rates}</div>
{waits}
<h2>Wait distributions</h2>
<div class="grid">{histogram(report, "first_answer_wait", "First-answer wait of each contact")}
{histogram(report, "journey_wait", "Customer wait summed over each journey")}</div>
<h2>Channel switches</h2>
<p class="s">Repeat contacts by the channel of the contact they repeat (rows) and their own (columns).</p>
{switch_matrix(report)}
<h2>Reasons × channels</h2>
{reasons}
<h2>Promises</h2>
{promises}
<h2>Identity health</h2>
<p>{i.pending_suggestions:,} merge suggestions waiting for a decision, {i.conflicts:,} vetoed by a per-kind limit
(conflicts), {i.shared_identifiers:,} shared identifiers.</p>
<h2>Definitions</h2>
<ul class="s">
<li>A contact is an inbound interaction the customer started; transfer legs and the next messages of a
conversation under way continue it, outbound and internal interactions are not contacts.</li>
<li>A repeat is a contact of the same customer, on any channel, within {report.repeat_window_days:g} days of their
previous contact; first-contact resolution is a contact no repeat followed within the window.</li>
<li>A journey is a run of contacts each repeating the one before; its wait is the sum of queue wait and hold over
every leg and contact, which is what the customer lived through, while each agent sees one leg.</li>
<li>A first answer is how long a contact waited for a person: its recorded queue wait, else the time until it was
answered, else the time until the first reply in its thread (not an automatic reply or a bot's message).</li>
<li>A wait nobody recorded is left out of the figures (n counts those that have one), not counted as 0 s.</li>
<li>Handle time is talk + hold where talk time is recorded, else answered → ended. Abandoned counts contacts that
reached nobody (abandoned, unanswered, busy, failed, canceled, undelivered, bounced).</li>
<li>Medians and 90th percentiles are observed values (discrete percentiles).</li>
</ul>"""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>unify consistency audit {escape(report.from_.date().isoformat())} – "
        f"{escape(report.to.date().isoformat())}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )
