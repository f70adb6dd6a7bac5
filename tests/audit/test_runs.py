"""A report spread over several connections: the same figures as on one, and its working tables (a run, migration
0018) gone afterwards, whether it ended well or not."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from schemas import ConsistencyReport
from tests.audit.conftest import contact, ident, ingest
from tests.audit.test_consistency import history
from unify.audit import audit_request, consistency_report, thresholds_of
from unify.audit import report as report_module
from unify.errors import ReportTooLong
from unify.http import create_app
from unify.settings import Settings
from unify.store import connect, open_pool

NOW = datetime(2026, 11, 20, tzinfo=UTC)
OCTOBER = audit_request("2026-10-01", "2026-10-31", now=NOW)
CHANNELS = ("voice", "sms", "email", "chat")
REASONS = ("billing", "technical", "cancel", None)


def busy_month(seed: int, customers: int = 90) -> list[dict[str, Any]]:
    """Customers contacting on every channel from September 20 to November 10 (repeats, transfers with a continuing
    leg, outbound calls, threads, shared and anonymous numbers), for figures of every kind."""
    rng = random.Random(seed)
    start = datetime(2026, 9, 20, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for c in range(customers):
        phone = ident("phone", f"+1 415-555-{c:04d}", rng.choice(["unverified", "carrier_attested"]))
        email = ident("email", f"person{c}@example.com", rng.choice(["unverified", "signed"]))
        at = start + timedelta(hours=rng.uniform(0, 24 * 10))
        for n in range(rng.randint(1, 9)):
            channel = rng.choice(CHANNELS)
            who = [phone] if channel in ("voice", "sms") else [email]
            if rng.random() < 0.2:
                who = [phone, email]
            if rng.random() < 0.05:
                who = [ident("phone", "anonymous")]
            wait = rng.choice([None, rng.uniform(0, 120), rng.uniform(60, 7200)])
            hold = rng.choice([None, 0, rng.uniform(0, 300)]) if channel == "voice" else None
            answered = at + timedelta(seconds=wait or 0)
            ext = f"{c}-{n}"
            events.append(
                contact(
                    ext, channel, at.isoformat(), *who,
                    direction="outbound" if rng.random() < 0.1 else "inbound",
                    status=rng.choice(["completed"] * 6 + ["abandoned", "failed"]),
                    answered=answered.isoformat(),
                    ended=(answered + timedelta(seconds=rng.uniform(30, 900))).isoformat(),
                    wait=wait, hold=hold, talk=rng.uniform(30, 600) if channel == "voice" else None,
                    reason=rng.choice(REASONS), queue=rng.choice(["support", "billing", None]),
                    transfers=1 if channel == "voice" and rng.random() < 0.2 else 0,
                    thread=f"t-{c}" if channel in ("email", "chat") and rng.random() < 0.5 else None,
                )
            )  # fmt: skip
            if events[-1]["transfer_count"]:
                events.append(
                    contact(
                        f"{ext}-leg", "voice", (answered + timedelta(minutes=5)).isoformat(), *who,
                        wait=rng.uniform(0, 300), hold=rng.uniform(0, 60), talk=120.0, previous_contact_id=ext,
                    )
                )  # fmt: skip
            at += timedelta(hours=rng.choice([2, 30, 24 * 4, 24 * 9, 24 * 15]))
    return events


@pytest.fixture
async def wide_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.database_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


async def report_on(pool: asyncpg.Pool, settings: Settings, connections: int, **asked: Any) -> ConsistencyReport:
    request = dataclasses.replace(OCTOBER, **asked)
    return await consistency_report(
        pool,
        request,
        repeat_window_days=settings.repeat_window_days,
        thresholds=thresholds_of(settings),
        connections=connections,
        now=NOW,
    )


def figures(report: ConsistencyReport) -> bytes:
    return msgspec.json.encode(msgspec.structs.replace(report, elapsed_seconds=0.0))


async def runs_left(db: asyncpg.Connection) -> tuple[list[str], list[str]]:
    recorded = [r["id"] for r in await db.fetch("select id from audit_run order by id")]
    schemas = [
        r["nspname"] for r in await db.fetch("select nspname from pg_namespace where nspname like 'audit_run_%'")
    ]
    return recorded, sorted(schemas)


async def test_several_connections_give_the_figures_of_one(
    settings: Settings, wide_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await ingest(settings, history() + busy_month(seed=3))
    alone = await report_on(wide_pool, settings, 1)
    assert alone.overall.contacts > 150 and alone.overall.repeats > 20 and alone.deviations  # figures of every kind
    assert {c.channel for c in alone.channels} == set(CHANNELS) and alone.switches
    # Two and three parts: every customer's interactions are ordered in the part of its id, whichever it is.
    for connections in (2, 3):
        assert figures(await report_on(wide_pool, settings, connections)) == figures(alone)
    for filters in ({"channel": "email"}, {"reason": "billing"}, {"queue": "support"}):
        one = await report_on(wide_pool, settings, 1, **filters)
        assert figures(await report_on(wide_pool, settings, 3, **filters)) == figures(one)
    assert await runs_left(db) == ([], [])


async def test_a_busy_pool_leaves_the_report_one_connection(
    settings: Settings, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await ingest(settings, history())
    assert settings.database_url
    pool = await open_pool(settings.database_url, min_size=1, max_size=1)
    try:
        timings: dict[str, float] = {}
        report = await consistency_report(
            pool,
            OCTOBER,
            repeat_window_days=7.0,
            thresholds=thresholds_of(settings),
            connections=2,
            now=NOW,
            timings=timings,
        )
    finally:
        await pool.close()
    assert report.overall.contacts == 6
    assert "legs 0" in timings and "legs 1" not in timings  # one part: one connection
    assert len(timings) == report_module.STEP_COUNT - 1


@pytest.mark.parametrize(
    ("switches", "time_limit", "error"),
    [
        ("select * from no_such_table", None, asyncpg.UndefinedTableError),  # the step's own error
        # past the report's time limit: the statement under way is cancelled, not waited for
        ("select pg_sleep(5), $1::text, $2::text, $3::text", 0.5, ReportTooLong),
    ],
)
async def test_the_run_is_closed_when_a_step_fails_or_runs_too_long(
    settings: Settings,
    wide_pool: asyncpg.Pool,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    switches: str,
    time_limit: float | None,
    error: type[Exception],
) -> None:
    await ingest(settings, history())
    monkeypatch.setattr(report_module, "_Q", dict(report_module._Q, figures_switches=switches))
    began = time.perf_counter()
    with pytest.raises(error):
        await consistency_report(
            wide_pool, OCTOBER, repeat_window_days=7.0, thresholds=thresholds_of(settings), time_limit=time_limit
        )
    assert time.perf_counter() - began < 3
    assert await runs_left(db) == ([], [])
    monkeypatch.undo()  # the pool's connections are still good
    assert await report_on(wide_pool, settings, 2) and await runs_left(db) == ([], [])


async def test_a_report_past_its_limit_answers_503(
    settings: Settings, auditor: dict[str, str], db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ingest(settings, history())
    slow = "select pg_sleep(5), $1::text, $2::text, $3::text"
    monkeypatch.setattr(report_module, "_Q", dict(report_module._Q, figures_switches=slow))
    limited = msgspec.structs.replace(settings, audit_timeout_seconds=0.5)
    async with AsyncTestClient(app=create_app(limited)) as client:
        response = await client.get(
            "/v1/audit/consistency", params={"from": "2026-10-01", "to": "2026-10-31"}, headers=auditor
        )
    assert response.status_code == 503 and "retry-after" not in response.headers  # not "database down"
    problem = response.json()
    assert problem["type"].endswith("/report-too-long") and "UNIFY_AUDIT_TIMEOUT_SECONDS" in problem["detail"]
    assert await runs_left(db) == ([], [])


async def test_runs_left_behind_are_swept_once_their_process_is_gone(
    settings: Settings, wide_pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    assert settings.database_url
    gone, live = "a" * 32, "b" * 32
    died = await connect(settings.database_url)
    for conn, run in ((died, gone), (db, live)):
        await conn.execute("select audit_run_open($1)", run)
        await conn.execute(f"create table audit_run_{run}.audit_leg (id uuid)")  # as a report would have left it
    await died.close()  # its server process ends: as when a report's process dies mid-report
    alive = "select exists (select 1 from audit_run r join pg_stat_activity a on a.pid = r.backend_pid where r.id = $1)"
    for _ in range(50):  # the server process ends just after the connection closes
        if not await db.fetchval(alive, gone):
            break
        await asyncio.sleep(0.1)
    await report_on(wide_pool, settings, 2)
    # a run whose opener is still connected may be under way: it stays, however old
    assert await runs_left(db) == ([live], [f"audit_run_{live}"])
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("select audit_run_open($1)", "x; drop table interaction")
