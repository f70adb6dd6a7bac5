"""The consistency audit on a realistic data set: how long the 30-day report takes.

What is measured
    The data set of bench/_dataset.py (`--interactions`, default 1,000,000, of `--customers`, default 100,000,
    over the last 60 days) is loaded once through the bulk import into a database of its own in an embedded
    PostgreSQL kept in `--data-dir` (default /tmp/unify-bench-audit; loading is skipped when that data set is there
    already). Then `unify.audit.consistency_report` — the function `GET /v1/audit/consistency` and `unify audit`
    call — runs for the last 30 days, `--runs` times (default 3), on `--connections` connections at once (default
    2, as the service); the first run is reported apart (cold caches) and the best of the others is compared with
    the target: under 5 seconds on 2 cores. Rows/s is the interactions the
    report read (the range widened by the repeat window on both sides) per second. The CSV and HTML renderings are
    timed too.

Run
    .venv/bin/python bench/audit.py --interactions 20000 --customers 2000     # a quick look
    .venv/bin/python bench/audit.py                                             # 1,000,000 interactions
    .venv/bin/python bench/audit.py --json

The exit status is 1 when the best run misses the target, else 0. The data directory is kept (pass --drop to remove
the data set's database afterwards); the server is stopped at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

# bench/ is not a package: this script's directory is on sys.path when it runs.
from _dataset import dataset_database, load_dataset_async
from ingest import log, report_main

TARGET_SECONDS = 5.0


async def _ensure_database(admin_dsn: str, name: str) -> None:
    from unify.embedded import ensure_database

    await ensure_database(admin_dsn, name)


async def _measure(dsn: str, runs: int, window_days: float, connections: int) -> dict[str, Any]:
    from unify.audit import audit_request, consistency_report, render_csv, render_html
    from unify.audit.report import thresholds_of
    from unify.settings import load_settings

    settings = load_settings(environ={}, database_url=dsn, repeat_window_days=window_days)
    now = datetime.now(UTC)
    asked = audit_request(now=now)
    from unify.store import open_pool

    pool = await open_pool(dsn, min_size=connections, max_size=connections, command_timeout=None)
    try:
        read = await pool.fetchval(
            "select count(*) from interaction where occurred_at >= $1 and occurred_at < $2",
            asked.start - timedelta(days=window_days),
            asked.end + timedelta(days=window_days),
        )
        times: list[float] = []
        report = None
        steps: dict[str, float] = {}  # the last run's (steps overlap on several connections)
        for run in range(runs):
            started = time.perf_counter()
            report = await consistency_report(
                pool,
                asked,
                repeat_window_days=window_days,
                thresholds=thresholds_of(settings),
                connections=connections,
                now=now,
                timings=steps,
            )
            times.append(time.perf_counter() - started)
            log(f"run {run + 1}: {times[-1]:.2f} s")
    finally:
        await pool.close()
    assert report is not None
    started = time.perf_counter()
    csv_bytes = len(render_csv(report).encode())
    html_bytes = len(render_html(report).encode())
    render_seconds = time.perf_counter() - started
    best = min(times[1:] or times)
    return {
        "range_days": 30,
        "interactions_read": read,
        "contacts_in_range": report.overall.contacts,
        "first_run_seconds": round(times[0], 3),
        "best_seconds": round(best, 3),
        "runs_seconds": [round(t, 3) for t in times],
        "rows_per_second": round(read / best),
        "connections": connections,
        "steps_seconds": steps,
        "render_seconds": round(render_seconds, 3),
        "csv_bytes": csv_bytes,
        "html_bytes": html_bytes,
        "deviations": len(report.deviations),
        "example_deviations": [d.text for d in report.deviations[:5]],
        "target_seconds": TARGET_SECONDS,
        "meets_target": best < TARGET_SECONDS,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from unify.embedded import dsn_for_database, start_server

    data_dir = Path(args.data_dir).expanduser()
    log(f"embedded PostgreSQL in {data_dir}")
    admin_dsn = start_server(data_dir / "pgdata", cleanup="stop")
    name = dataset_database(args.interactions, args.customers, args.seed)
    asyncio.run(_ensure_database(admin_dsn, name))
    dsn = dsn_for_database(admin_dsn, name)
    info = asyncio.run(
        load_dataset_async(dsn, args.interactions, args.customers, args.seed, work_dir=data_dir / "work")
    )
    measured = asyncio.run(_measure(dsn, args.runs, args.window_days, args.connections))
    if args.drop:

        async def drop() -> None:
            conn = await asyncpg.connect(admin_dsn)
            try:
                await conn.execute(f'drop database if exists "{name}" with (force)')
            finally:
                await conn.close()

        asyncio.run(drop())
    return {
        "dataset": {
            "key": info.key,
            "interactions_in_database": info.rows,
            "customers": info.customers,
            "loaded_now": info.loaded,
            "load_seconds": round(info.seconds, 1),
        },
        "audit": measured,
    }


def print_report(report: dict[str, Any]) -> None:
    d, a = report["dataset"], report["audit"]
    verdict = "meets" if a["meets_target"] else "MISSES"
    print(
        f"\nconsistency audit benchmark: {d['interactions_in_database']:,} interactions, {d['customers']:,} customers"
    )
    print(f"data set {'loaded in ' + str(d['load_seconds']) + ' s' if d['loaded_now'] else 'already loaded'}")
    print(f"30-day report: read {a['interactions_read']:,} interactions ({a['contacts_in_range']:,} contacts in range)")
    print(f"first run {a['first_run_seconds']:.2f} s, best {a['best_seconds']:.2f} s of {a['runs_seconds']}")
    print(f"rows/s {a['rows_per_second']:,}  ({verdict} the target of < {a['target_seconds']:.0f} s)")
    print(
        f"steps of the last run (overlapping on {a['connections']} connections): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in a["steps_seconds"].items())
    )
    print(f"render CSV + HTML {a['render_seconds']:.2f} s ({a['csv_bytes']:,} + {a['html_bytes']:,} bytes)")
    print(f"{a['deviations']} deviations flagged, e.g.:")
    for text in a["example_deviations"]:
        print(f"  - {text}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=1_000_000, help="size of the data set (default 1,000,000)")
    parser.add_argument("--customers", type=int, default=100_000, help="customers in it (default 100,000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--data-dir", default="/tmp/unify-bench-audit", help="embedded PostgreSQL data directory")
    parser.add_argument("--runs", type=int, default=3, help="report runs (default 3)")
    parser.add_argument("--window-days", type=float, default=7.0, help="repeat window (default 7)")
    parser.add_argument(
        "--connections", type=int, default=2, help="connections a report works on at once (default 2, as the service)"
    )
    parser.add_argument("--drop", action="store_true", help="drop the data set's database afterwards")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.interactions < 100 or args.customers < 10 or args.runs < 1:
        parser.error("--interactions must be at least 100, --customers at least 10, --runs at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")
    from unify.logging import configure_logging

    configure_logging("console", "warning")
    return report_main(lambda: run(args), as_json=args.json, show=print_report, ok=lambda r: r["audit"]["meets_target"])


if __name__ == "__main__":
    sys.exit(main())
