"""The consistency report: run the aggregations of queries/audit.sql in one transaction and shape the rows.

Nothing is counted here: PostgreSQL builds the temporary tables of the range (legs, journeys) and
aggregates them; this module turns the rows into `ConsistencyReport` and applies the statistical tests to the
counts the database returned (a two-proportion z-test for rates, Mood's median test for waits)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from schemas import (
    AuditMetric,
    AuditThresholds,
    ChannelFigures,
    ChannelSwitch,
    ConsistencyReport,
    Deviation,
    IdentityHealth,
    PromiseFigures,
    Quantiles,
    ReasonChannelFigures,
    WaitBucket,
    WaitFigures,
)
from unify.audit.params import CHANNELS, AuditRequest
from unify.errors import ReportTooLong
from unify.settings import Settings
from unify.store import DATABASE_UNREACHABLE, load_queries

log = structlog.get_logger("unify.audit")
_Q = load_queries("audit")

Progress = Callable[[str, int, int], None]
"""Called before each step with its description, the steps done and the steps in all."""

HISTOGRAM_EDGES: tuple[float, ...] = (0, 30, 60, 120, 300, 600, 1800, 3600)
"""Lower edges (seconds) of the wait-histogram buckets of queries/audit.sql (figures_wait_histogram)."""

CHANNEL_WORDS = {"voice": "phone", "sms": "SMS", "email": "email", "chat": "chat"}


@dataclass(frozen=True)
class _Step:
    """One statement of a report, run in a transaction of its own on whichever of the report's connections is free
    once the steps it `needs` are done; its rows are kept under `key`."""

    key: str
    query: str
    description: str
    needs: tuple[str, ...] = ()
    args: Callable[[dict[str, Any]], tuple[Any, ...]] = lambda rows: ()
    call: str = "fetch"  # "execute" (a table made or filled), "fetch" (rows) or "fetchrow" (one row)


STEP_COUNT = 16
"""Steps of a report on two connections (the range and the tables, the legs in two parts, the journeys, the
reasons, ten figures); the progress callback is told the actual count."""


def _steps(request: AuditRequest, window: timedelta, settled_by: datetime, now: datetime, parts: int) -> list[_Step]:
    """The steps of a report, most urgent first: the range, then its legs in `parts` parts (one per connection),
    then the journeys and the figures (the longest first, so that the connections finish together)."""
    filters = (request.channel, request.reason, request.queue)
    legs = tuple(f"legs {part}" for part in range(parts))
    journeys = ("prepare_journeys",)
    return [
        _Step(
            "prepare_range",
            "prepare_range",
            "reading the range's interactions and their owners",
            args=lambda rows: (request.start, request.end, window),
            call="execute",
        ),
        _Step("create_tables", "create_tables", "creating the report's tables", call="execute"),
        *(
            _Step(
                key,
                "prepare_legs",
                "ordering each customer's interactions of the range"
                + (f" (part {part + 1} of {parts})" if parts > 1 else ""),
                needs=("prepare_range", "create_tables"),
                args=lambda rows, part=part: (window, settled_by, parts, part),
                call="execute",
            )
            for part, key in enumerate(legs)
        ),
        _Step(
            "prepare_journeys",
            "prepare_journeys",
            "following journeys",
            legs,
            lambda rows: (window, settled_by),
            "execute",
        ),
        _Step("range_reasons", "range_reasons", "reasons of the range", legs, lambda rows: filters),
        # the Mood tests number their cells after the reasons of the range's contacts
        _Step(
            "first_answer_tests",
            "figures_wait_tests",
            "Mood's median tests of first-answer waits",
            ("range_reasons",),
            lambda rows: (*filters, [r["reason"] for r in rows["range_reasons"]], 1),
        ),
        _Step(
            "journey_wait_tests",
            "figures_wait_tests",
            "Mood's median tests of journey waits",
            ("prepare_journeys", "range_reasons"),
            lambda rows: (*filters, [r["reason"] for r in rows["range_reasons"]], 2),
        ),
        _Step("figures_channels", "figures_channels", "per-channel figures", legs, lambda rows: filters),
        _Step("figures_rate_counts", "figures_rate_counts", "rates for the tests", legs, lambda rows: filters),
        _Step("figures_reasons", "figures_reasons", "reasons × channels", journeys, lambda rows: filters),
        _Step("figures_wait_histogram", "figures_wait_histogram", "wait distributions", journeys, lambda rows: filters),
        _Step("figures_journeys", "figures_journeys", "journey waits", journeys, lambda rows: filters),
        _Step("figures_switches", "figures_switches", "channel switches", legs, lambda rows: filters),
        _Step(
            "figures_promises",
            "figures_promises",
            "promises",
            args=lambda rows: (*filters, request.start, request.end, now),
        ),
        _Step("identity_health", "identity_health", "identity health", call="fetchrow"),
    ]


def thresholds_of(settings: Settings) -> AuditThresholds:
    """The deviation thresholds UNIFY_AUDIT_… configure."""
    return AuditThresholds(
        min_count=settings.audit_min_count,
        rate_difference=settings.audit_rate_difference,
        wait_ratio=settings.audit_wait_ratio,
        significance=settings.audit_significance,
    )


async def consistency_report(
    pool: asyncpg.Pool,
    request: AuditRequest,
    *,
    repeat_window_days: float,
    thresholds: AuditThresholds,
    connections: int = 2,
    now: datetime | None = None,
    progress: Progress | None = None,
    timings: dict[str, float] | None = None,
    time_limit: float | None = None,
) -> ConsistencyReport:
    """The consistency audit of contacts in [request.start, request.end), everything aggregated by PostgreSQL in one
    pass over the range widened by the repeat window. The work is spread over up to `connections` connections of
    `pool` (fewer when the pool has no more free within a moment): the run's tables (migration 0018) are shared by
    them and dropped at the end. `timings`, when given, receives each step's seconds (steps overlap). Past
    `time_limit` seconds (None: the pool's statement timeout for each step) the statement under way is cancelled
    and ReportTooLong raised."""
    started = time.perf_counter()
    deadline = None if time_limit is None else started + time_limit
    now = now or datetime.now(UTC)
    window = timedelta(days=repeat_window_days)
    settled_by = min(request.end + window, now)
    async with pool.acquire() as first:
        await _sweep_runs(first)
        run = uuid.uuid4().hex
        schema = await first.fetchval(_Q["open_run"], run)
        try:
            # the other connections go back to the pool (their transactions ended) before the run's tables are dropped
            async with contextlib.AsyncExitStack() as others:
                conns = [first]
                while len(conns) < connections:
                    try:
                        conns.append(await others.enter_async_context(pool.acquire(timeout=EXTRA_CONNECTION_WAIT)))
                    except TimeoutError:
                        break
                steps = _steps(request, window, settled_by, now, len(conns))
                try:
                    rows = await _run_steps(
                        conns, schema, steps, progress, timings if timings is not None else {}, deadline
                    )
                except TimeoutError:
                    if deadline is None or time.perf_counter() < deadline:
                        raise  # not the report's limit (the database did not answer)
                    raise ReportTooLong(
                        f"the report ran past its limit of {time_limit:g} s (UNIFY_AUDIT_TIMEOUT_SECONDS) and was "
                        "stopped; ask for a shorter range or for one channel, reason or queue, or run `unify audit`, "
                        "which has no limit"
                    ) from None
        finally:
            await _close_run(pool, first, run)

    channels = _channel_figures(rows["figures_channels"], rows["figures_journeys"])
    overall = channels.pop(None, None) or _empty_channel(None)
    tested, too_few = find_deviations(
        rows["figures_rate_counts"],
        [*rows["first_answer_tests"], *rows["journey_wait_tests"]],
        rows["figures_promises"],
        thresholds,
        repeat_window_days,
    )
    health = rows["identity_health"]
    report = ConsistencyReport(
        generated_at=now,
        from_=request.start,
        to=request.end,
        channel=request.channel,
        reason=request.reason,
        queue=request.queue,
        repeat_window_days=repeat_window_days,
        thresholds=thresholds,
        overall=overall,
        channels=[channels[c] for c in CHANNELS if c in channels],
        switches=[ChannelSwitch(**dict(r)) for r in rows["figures_switches"]],
        promises=[_promise(r) for r in rows["figures_promises"]],
        reasons=[_reason(r) for r in rows["figures_reasons"]],
        deviations=tested,
        too_few=too_few,
        wait_histogram=[_bucket(r) for r in rows["figures_wait_histogram"]],
        identity=IdentityHealth(**dict(health)),
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "audit_report",
        start=request.start.isoformat(),
        end=request.end.isoformat(),
        channel=request.channel,
        reason=request.reason,
        queue=request.queue,
        contacts=overall.contacts,
        deviations=len(tested),
        too_few=len(too_few),
        elapsed_seconds=report.elapsed_seconds,
    )
    return report


RANGE_WORKERS = "2"
"""Parallel workers reading the range's interactions (prepare_range); the other steps use none (see run_session)."""

EXTRA_CONNECTION_WAIT = 0.5
"""Seconds a report waits for each connection past its first; a busy pool leaves it with fewer."""


async def _run_steps(
    conns: Sequence[asyncpg.Connection],
    schema: str,
    steps: Sequence[_Step],
    progress: Progress | None,
    timings: dict[str, float],
    deadline: float | None = None,
) -> dict[str, Any]:
    """Run `steps` on `conns`, each connection taking the first step whose needs are done whenever it is free (its
    seconds go to `timings`). A step that fails cancels the others and its error is raised."""
    rows: dict[str, Any] = {}
    waiting = list(steps)
    done: set[str] = set()
    changed = asyncio.Condition()

    def left() -> float | None:
        """Seconds to the deadline: past it, asyncpg cancels the statement and raises TimeoutError."""
        return None if deadline is None else max(deadline - time.perf_counter(), 0.001)

    async def work(conn: asyncpg.Connection) -> None:
        while True:
            async with changed:
                step = None
                while step is None:
                    if not waiting:
                        return
                    step = next((s for s in waiting if done.issuperset(s.needs)), None)
                    if step is None:
                        await changed.wait()
                waiting.remove(step)
                if progress is not None:
                    progress(step.description, len(steps) - len(waiting) - 1, len(steps))
            began = time.perf_counter()
            async with conn.transaction():
                workers = RANGE_WORKERS if step.key == "prepare_range" else "0"
                await conn.execute(_Q["run_session"], schema, workers, timeout=left())
                call = getattr(conn, step.call)
                rows[step.key] = await call(_Q[step.query], *step.args(rows), timeout=left())
            timings[step.key] = round(time.perf_counter() - began, 3)
            async with changed:
                done.add(step.key)
                changed.notify_all()

    try:
        async with asyncio.TaskGroup() as group:
            for conn in conns:
                group.create_task(work(conn))
    except ExceptionGroup as failed:
        # the step's own error (a database error maps to its HTTP answer), not the group the other steps were in
        raise failed.exceptions[0] from failed
    if progress is not None:
        progress("done", len(steps), len(steps))
    return rows


async def _sweep_runs(conn: asyncpg.Connection) -> None:
    """Close the runs of reports whose process died mid-report; a sweep that fails (its tables in use) is no reason
    to fail this report."""
    try:
        closed = await conn.fetchval(_Q["sweep_runs"])
    except asyncpg.PostgresError as error:
        log.warning("audit_runs_not_swept", error=str(error))
    else:
        if closed:
            log.info("audit_runs_swept", runs=closed)


async def _close_run(pool: asyncpg.Pool, first: asyncpg.Connection, run: str) -> None:
    """Drop the run's tables, on the connection that opened it, or on another one if that one was lost."""
    try:
        await first.execute(_Q["close_run"], run)
        return
    except (asyncpg.PostgresError, *DATABASE_UNREACHABLE) as error:
        log.warning("audit_run_not_closed", run=run, error=str(error), retry="another connection")
    try:
        async with pool.acquire(timeout=EXTRA_CONNECTION_WAIT) as conn:
            await conn.execute(_Q["close_run"], run)
    except (TimeoutError, asyncpg.PostgresError, *DATABASE_UNREACHABLE) as error:
        # its opening connection gone, the next report's sweep closes it
        log.warning("audit_run_left_open", run=run, error=str(error))


# ---------------------------------------------------------------------------------------------------------------
# Shaping


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quantiles(n: int, values: Sequence[float] | None) -> Quantiles:
    if not n or values is None:
        return Quantiles(n=n)
    return Quantiles(n=n, median=values[0], p90=values[1])


_NO_WAITS = WaitFigures(queue_wait=Quantiles(), hold=Quantiles(), customer_wait=Quantiles())


def _empty_channel(channel: str | None) -> ChannelFigures:
    return ChannelFigures(  # type: ignore[arg-type]
        channel=channel, per_leg=_NO_WAITS, handle=Quantiles(), first_answer=Quantiles(), per_journey=_NO_WAITS
    )


def _channel_figures(legs: list[asyncpg.Record], journeys: list[asyncpg.Record]) -> dict[str | None, ChannelFigures]:
    by_journey = {None if r["overall"] else r["channel"]: r for r in journeys}
    figures: dict[str | None, ChannelFigures] = {}
    for r in legs:
        key = None if r["overall"] else r["channel"]
        j = by_journey.get(key)
        journeys_n = j["journeys"] if j else 0
        per_journey = (
            WaitFigures(
                queue_wait=_quantiles(j["queue_wait_n"], j["queue_wait"]),
                hold=_quantiles(j["hold_n"], j["hold"]),
                customer_wait=_quantiles(j["customer_wait_n"], j["customer_wait"]),
            )
            if j
            else _NO_WAITS
        )
        figures[key] = ChannelFigures(
            channel=key,  # type: ignore[arg-type]
            contacts=r["contacts"],
            customers=r["customers"],
            unidentified=r["unidentified"],
            unidentified_share=_rate(r["unidentified"], r["contacts"]),
            identified_contacts=r["identified_contacts"],
            legs=r["legs"],
            per_leg=WaitFigures(
                queue_wait=_quantiles(r["queue_wait_n"], r["queue_wait"]),
                hold=_quantiles(r["hold_n"], r["hold"]),
                customer_wait=_quantiles(r["customer_wait_n"], r["customer_wait"]),
            ),
            handle=_quantiles(r["handle_n"], r["handle"]),
            first_answer=_quantiles(r["first_answer_n"], r["first_answer"]),
            journeys=journeys_n,
            per_journey=per_journey,
            transferred=r["transferred"],
            transfer_rate=_rate(r["transferred"], r["contacts"]),
            abandoned=r["failed"],
            abandonment_rate=_rate(r["failed"], r["contacts"]),
            repeats=r["repeats"],
            repeat_rate=_rate(r["repeats"], r["identified_contacts"]),
            fcr_settled=r["fcr_settled"],
            fcr_resolved=r["fcr_resolved"],
            first_contact_resolution=_rate(r["fcr_resolved"], r["fcr_settled"]),
        )
    return figures


def _promise(r: asyncpg.Record) -> PromiseFigures:
    due = r["kept"] + r["broken"] + r["overdue"]
    return PromiseFigures(
        overall=r["overall"],
        channel=None if r["overall"] else r["channel"],
        made=r["made"],
        kept=r["kept"],
        broken=r["broken"],
        overdue=r["overdue"],
        open=r["open"],
        kept_rate=_rate(r["kept"], due),
    )


def _reason(r: asyncpg.Record) -> ReasonChannelFigures:
    return ReasonChannelFigures(
        reason=r["reason"],
        channel=r["channel"],
        contacts=r["contacts"],
        journeys=r["journeys"],
        resolved=r["resolved"],
        resolution_rate=_rate(r["resolved"], r["journeys"]),
        median_resolution_seconds=r["median_resolution_seconds"],
    )


def _bucket(r: asyncpg.Record) -> WaitBucket:
    index = max(0, min(r["bucket"], len(HISTOGRAM_EDGES) - 1))  # width_bucket: 0 below the first edge
    upper = HISTOGRAM_EDGES[index + 1] if index + 1 < len(HISTOGRAM_EDGES) else None
    return WaitBucket(
        metric=r["metric"],
        channel=r["channel"],
        from_seconds=HISTOGRAM_EDGES[index],
        to_seconds=upper,
        count=r["count"],
    )


# ---------------------------------------------------------------------------------------------------------------
# Deviations


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float] | None:
    """z and the two-sided p-value of the difference of two proportions (pooled standard error); None when it is
    undefined (an empty side, or both proportions 0 or both 1)."""
    if not n1 or not n2:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (x1 / n1 - x2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def mood_median_chi2(above1: int, n1: int, above2: int, n2: int) -> tuple[float, float] | None:
    """Mood's median test: the chi-square (1 degree of freedom, no continuity correction) of the 2×2 table of values
    above / at or below the pooled median on each side, and its p-value; None when a margin is empty."""
    a, b, c, d = above1, n1 - above1, above2, n2 - above2
    rows, cols = (a + b) * (c + d), (a + c) * (b + d)
    if rows == 0 or cols == 0:
        return None
    chi2 = (a + b + c + d) * (a * d - b * c) ** 2 / (rows * cols)
    return chi2, math.erfc(math.sqrt(chi2 / 2))


def duration_text(value: float, *, days: str = "days") -> str:
    """A duration in seconds for people: seconds under 2 min, minutes under 2 h, hours under 2 days, then days
    (written `days`, e.g. `d` in a table)."""
    if value < 120:
        return f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    if value < 172_800:
        return f"{value / 3600:.1f} h"
    return f"{value / 86_400:.1f} {days}"


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


_RATE_METRICS: tuple[tuple[AuditMetric, str, str, str], ...] = (
    # metric, numerator column, denominator column, words (more / less)
    ("repeat_rate", "repeats", "identified_contacts", "come back within {w} days"),
    ("first_contact_resolution", "fcr_resolved", "fcr_settled", "are resolved at first contact"),
    ("transfer_rate", "transferred", "contacts", "are transferred"),
    ("abandonment_rate", "failed", "contacts", "give up or never get through (abandoned, unanswered, bounced…)"),
)

_KEPT_WORDS = "see the promises made to them kept"

_WAIT_WORDS = {
    "first_answer_wait": "for a first answer",
    "journey_wait": "in all across their journey (queue and hold, every leg and contact)",
}


def find_deviations(
    rate_counts: list[asyncpg.Record],
    wait_tests: list[asyncpg.Record],
    promises: list[asyncpg.Record],
    thresholds: AuditThresholds,
    window_days: float,
) -> tuple[list[Deviation], list[Deviation]]:
    """Every (figure, reason or all, channel) against the other channels: flagged when both sides reach the minimum
    count, the effect reaches its threshold and the test is significant; listed as `too few` when the effect
    reaches its threshold on too few values to judge."""
    flagged: list[Deviation] = []
    too_few: list[Deviation] = []

    def consider(d: Deviation, effect_ok: bool) -> None:
        if not effect_ok:
            return
        if d.n < thresholds.min_count or d.others_n < thresholds.min_count:
            too_few.append(d)
        elif d.p_value < thresholds.significance:
            flagged.append(d)

    # Rates: (metric, words) → reason (None: every reason) → channel → (numerator, denominator).
    rates: dict[tuple[AuditMetric, str], dict[str | None, dict[str, tuple[int, int]]]] = {}
    for r in rate_counts:
        for metric, part, whole, words in _RATE_METRICS:
            cell = rates.setdefault((metric, words), {}).setdefault(None if r["all_reasons"] else r["reason"], {})
            cell[r["channel"]] = (r[part], r[whole])
    kept = rates.setdefault(("promise_kept_rate", _KEPT_WORDS), {}).setdefault(None, {})
    for r in promises:
        if not r["overall"] and r["channel"] is not None:
            kept[r["channel"]] = (r["kept"], r["kept"] + r["broken"] + r["overdue"])
    window_words = f"{window_days:g}"
    for (metric, words), cells in rates.items():
        for reason, by_channel in cells.items():
            about = f" about {reason or '(no reason)'}" if reason is not None else ""
            for channel, (x1, n1) in by_channel.items():
                x2 = sum(x for c, (x, _) in by_channel.items() if c != channel)
                n2 = sum(n for c, (_, n) in by_channel.items() if c != channel)
                test = two_proportion_z(x1, n1, x2, n2)
                if test is None:
                    continue
                p1, p2 = x1 / n1, x2 / n2
                more = "more often" if p1 > p2 else "less often"
                text = (
                    f"{CHANNEL_WORDS[channel]} customers{about} {words.format(w=window_words)} {more}: "
                    f"{p1:.0%} vs {p2:.0%} on other channels; n={n1:,} vs {n2:,} ({_p(test[1])})"
                )
                d = Deviation(
                    metric=metric,
                    reason=reason,
                    channel=channel,
                    value=p1,
                    others=p2,
                    n=n1,
                    others_n=n2,
                    difference=p1 - p2,
                    test="two-proportion z",
                    statistic=test[0],
                    p_value=test[1],
                    text=text,
                )
                consider(d, abs(p1 - p2) >= thresholds.rate_difference)

    for r in wait_tests:
        reason = None if r["cell"] == "*" else r["cell"]
        about = f" about {reason or '(no reason)'}" if reason is not None else ""
        n_all, le_all = r["n"], r["le_pooled"]
        for i, channel in enumerate(CHANNELS):
            n1 = r["n_channel"][i]
            n2 = n_all - n1
            if not n1 or not n2:
                continue
            le1 = r["le_channel"][i]
            above1, above2 = n1 - le1, n2 - (le_all - le1)
            test = mood_median_chi2(above1, n1, above2, n2)
            m1, m2 = r["median_channel"][i], r["median_others"][i]
            if test is None or m1 is None or m2 is None:
                continue
            ratio = max(m1, 1.0) / max(m2, 1.0)
            longer = f"{ratio:.1f}× longer" if ratio >= 1 else f"{1 / ratio:.1f}× less"
            text = (
                f"{CHANNEL_WORDS[channel]} customers{about} wait {longer} {_WAIT_WORDS[r['metric']]} than customers "
                f"on other channels: median {duration_text(m1)} vs {duration_text(m2)}; "
                f"n={n1:,} vs {n2:,} ({_p(test[1])})"
            )
            d = Deviation(
                metric=r["metric"],
                reason=reason,
                channel=channel,
                value=m1,
                others=m2,
                n=n1,
                others_n=n2,
                ratio=ratio,
                test="Mood median",
                statistic=test[0],
                p_value=test[1],
                text=text,
            )
            consider(d, ratio >= thresholds.wait_ratio or ratio <= 1 / thresholds.wait_ratio)

    def order(d: Deviation) -> tuple[Any, ...]:
        return (d.reason is not None, d.reason or "", d.metric, d.p_value)

    return sorted(flagged, key=order), sorted(too_few, key=order)
