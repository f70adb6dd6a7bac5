"""Agent context lookups of unify against bare Litestar + asyncpg ceilings, on the same data, in one run.

What is measured
    `GET /v1/context?phone=…` (scope `context:read`) of `unify serve --workers 1`: unify normalizes the number,
    finds the identifier and its customer group, and PostgreSQL assembles the whole context (timeline, journey,
    repeat, effort, open threads, promises, guidance) as JSON in one statement that also writes an access-log row.
    The phone numbers rotate through a sample of loaded customers' numbers, written in formatting variants
    (`(415) 555 0100`, `tel:+1…`, …), with a share of numbers nobody has (default 10%), which answer `unknown`.
    The ceilings are two routes of a bare app (`bench/_bare_context_app.py`) on the same database, asked for the
    same numbers already in E.164: each finds the identifier by (kind, value) and selects its newest 50
    `interaction` rows through `interaction_identifier` (indexed), then either encodes them with msgspec in Python
    (`bare-msgspec`) or has PostgreSQL build the JSON (`bare-pg-json`, the handler returns the bytes). A third
    route, `bare-logged`, is `bare-msgspec` whose statement also writes the access-log row unify writes for each
    read: not a ceiling, but the most a read logged before it is answered reaches (`logged / ceiling`).
    Each target gets concurrency 1 (one connection, each request sent when the previous one is answered: p50, p99,
    req/s) and concurrency 32 (32 keep-alive connections: req/s, p50, p99). The figure that matters is
    `ratio = unify req/s ÷ bare req/s` at concurrency 32 against the faster bare route (target ≥ 0.8), with p50 at
    concurrency 1 ≤ 3 ms; the ratio to each bare route is shown.

Data
    `--interactions` interactions (default 1,000,000) of `--customers` customers (default 100,000), generated and
    loaded through the bulk import path by bench/_dataset.py into an embedded PostgreSQL kept in `--data-dir`
    (default /tmp/unify-bench-data): the first run loads it (about 8 minutes of both cores at full size), later runs
    reuse it. Scale down for development: `--interactions 20000 --customers 2000`.

How
    The embedded PostgreSQL starts from `--data-dir`; `unify serve --workers 1` (which migrates) and the bare app
    (granian, one worker, unify's pool size) start as subprocesses; a `context:read` key is created with
    `unify keys create`. Every target gets a warm-up (default 2 s at concurrency 32), then the targets are measured
    one after the other, `--rounds` times (alternating which goes first; the median round of each is reported),
    each starting after a checkpoint. The load comes from Python processes speaking HTTP/1.1 over asyncio streams
    (bench/ingest.py's client); latencies are client-side, from sending a request to its whole answer, and req/s
    counts 2xx answers only (every answer must be 200: other answers and socket errors are reported and fail the
    run). At the end the access-log rows the run wrote are deleted and its key revoked, so the data set stays as
    loaded; the servers are stopped and the temporary directory (logs, URL lists) removed, on Ctrl-C and on error
    too. The client, the servers and PostgreSQL share the machine's cores: on a shared machine use `--rounds 3`.

Run
    .venv/bin/python bench/context.py --interactions 20000 --customers 2000 --duration 3   # development
    .venv/bin/python bench/context.py                                                      # 1M / 100k
    .venv/bin/python bench/context.py --duration 30 --rounds 3 --json

The exit status is 1 when an answer was not 200, a socket failed or a server failed, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

# bench/ is not a package: this script's directory is on sys.path when it runs, so bench/ingest.py imports as `ingest`.
from _bare_context_app import LOGGED_KEY
from _dataset import DatasetInfo, dataset_database, load_dataset, sample_phones
from ingest import (
    LoadResult,
    Server,
    _checkpoint,
    log,
    report_main,
    run_python,
    start_pair,
    unify_command,
)

TARGET_RATIO = 0.8
TARGET_P50_MS = 3.0
CONNECTIONS = 32
UNIFY, BARE_MSGSPEC, BARE_PG_JSON, BARE_LOGGED = "unify", "bare-msgspec", "bare-pg-json", "bare-logged"
CEILINGS = {BARE_MSGSPEC: "/msgspec", BARE_PG_JSON: "/pg-json"}
BARE_ROUTES = {**CEILINGS, BARE_LOGGED: "/logged"}
"""The bare app's routes measured: the two ceilings, and the msgspec route that also writes an access-log row."""
UNKNOWN_AREAS = ("917", "510", "702", "919", "480", "614")  # for numbers nobody in the data set has


# ---------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class Level:
    """The measured rounds of one target at one concurrency."""

    rounds: list[LoadResult] = field(default_factory=list)

    @property
    def median(self) -> LoadResult:
        """The round with the median throughput (the lower one of the middle two for an even count)."""
        ordered = sorted(self.rounds, key=lambda r: r.rps)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def failures(self) -> int:
        return sum(r.non_2xx + r.socket_errors for r in self.rounds)

    def as_dict(self) -> dict[str, Any]:
        median = self.median
        return {
            "req_per_s": round(median.rps, 1),
            "p50_ms": None if median.p50_ms is None else round(median.p50_ms, 2),
            "p99_ms": None if median.p99_ms is None else round(median.p99_ms, 2),
            "rounds_req_per_s": [round(r.rps, 1) for r in self.rounds],
            "ok": sum(r.ok for r in self.rounds),
            "non_200": sum(r.non_2xx for r in self.rounds),
            "socket_errors": sum(r.socket_errors for r in self.rounds),
        }


# ---------------------------------------------------------------------------------------------------------------
# The lookups


@dataclass
class Lookups:
    """The numbers asked for, in the same order for every target: as written (for unify) and in E.164 (bare)."""

    written: list[str]
    e164: list[str]
    unknown: int


def _normalize(value: str, region: str) -> str | None:
    from schemas import Identifier
    from unify.identity import normalize_identifier

    found = normalize_identifier(Identifier(kind="phone", value=value), region)
    return found.value if found is not None else None


async def _changed_migrations(dsn: str) -> list[str]:
    """The migrations whose text changed after they were applied to this database (`unify serve` only warns)."""
    from unify.store._migrations import MIGRATIONS

    conn = await asyncpg.connect(dsn)
    try:
        applied = dict(await conn.fetch("select version, checksum from schema_migration"))
    finally:
        await conn.close()
    return [
        f"{m.version:04d}_{m.name}" for m in MIGRATIONS if m.version in applied and applied[m.version] != m.checksum
    ]


async def _known_phones(dsn: str, values: list[str]) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("select value from identifier where kind = 'phone' and value = any($1::text[])", values)
        return {r["value"] for r in rows}
    finally:
        await conn.close()


def make_lookups(dsn: str, count: int, unknown_share: float, seed: int) -> Lookups:
    """`count` lookups: loaded customers' numbers as bench/_dataset.py writes them, and about `unknown_share` of
    numbers in no identifier (checked), written the same ways."""
    from unify.settings import load_settings

    region = load_settings().default_region
    rng = random.Random(seed)
    written = sample_phones(dsn, count - round(count * unknown_share), seed=seed)  # fewer when the data set is small
    unknown_count = round(len(written) * unknown_share / (1 - unknown_share))
    e164 = [_normalize(value, region) for value in written]
    missing = [w for w, e in zip(written, e164, strict=True) if e is None]
    if missing:
        raise RuntimeError(f"{len(missing)} sampled numbers do not normalize, e.g. {missing[:3]}")
    known = asyncio.run(_known_phones(dsn, [e for e in e164 if e is not None]))
    absent = [w for w, e in zip(written, e164, strict=True) if e not in known]
    if len(absent) > len(written) // 100:
        raise RuntimeError(f"{len(absent)} of {len(written)} sampled numbers are in no identifier, e.g. {absent[:3]}")

    strangers: dict[str, str] = {}
    while len(strangers) < unknown_count:
        area, line = rng.choice(UNKNOWN_AREAS), rng.randrange(10_000)
        number = f"+1{area}{rng.randrange(200, 1000):03d}{line:04d}"
        variant = rng.choice(
            [number, f"({area}) {number[5:8]} {number[8:]}", f"tel:{number}", f"+1 {area}-{number[5:8]}-{number[8:]}"]
        )
        if _normalize(variant, region) == number:
            strangers[number] = variant
    taken = asyncio.run(_known_phones(dsn, list(strangers)))
    strangers = {n: v for n, v in strangers.items() if n not in taken}

    pairs = [(w, e) for w, e in zip(written, e164, strict=True) if e is not None]
    pairs += [(v, n) for n, v in strangers.items()]
    rng.shuffle(pairs)
    return Lookups(written=[w for w, _ in pairs], e164=[e for _, e in pairs], unknown=len(strangers))


def write_paths(path: Path, route: str, values: list[str]) -> Path:
    path.write_text("".join(f"{route}?phone={quote(v, safe='')}\n" for v in values))
    return path


# ---------------------------------------------------------------------------------------------------------------
# Servers


@dataclass
class Target:
    name: str
    base_url: str  # scheme, host and port
    paths_file: Path  # one request path a line, asked for in turn


@dataclass
class Servers:
    workdir: Path
    admin_dsn: str
    dsn: str
    unify_env: dict[str, str]
    unify_port: int
    bare_port: int
    servers: tuple[Server, Server]
    data_set: DatasetInfo

    def check_alive(self) -> None:
        for server in self.servers:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")


@contextmanager
def context_servers(args: argparse.Namespace) -> Iterator[Servers]:
    """Start the embedded PostgreSQL in `--data-dir`, load the data set unless it is there, start `unify serve
    --workers 1` and the bare app on its database; stop all of them afterwards (the data stays)."""
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")  # XDG_RUNTIME_DIR unset
    from unify.embedded import dsn_for_database, ensure_database, start_server
    from unify.logging import configure_logging

    configure_logging("console", "warning")

    data_dir = Path(args.data_dir).expanduser().resolve()
    workdir = Path(tempfile.mkdtemp(prefix="unify-bench-context-"))
    # Registered before the server's own handler so that it runs after it (atexit is last-in, first-out).
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    log(f"starting embedded PostgreSQL in {data_dir / 'pgdata'}")
    admin_dsn = start_server(data_dir / "pgdata", cleanup="stop")
    database = dataset_database(args.interactions, args.customers, args.seed)
    asyncio.run(ensure_database(admin_dsn, database))
    dsn = dsn_for_database(admin_dsn, database)
    log(f"data set: {args.interactions} interactions of {args.customers} customers (loaded unless there already)")
    started = time.monotonic()
    info = load_dataset(dsn, args.interactions, args.customers, args.seed, work_dir=data_dir / "work")
    state = "loaded" if info.loaded else "reused"
    log(f"data set {state} ({info.rows:,} interactions) in {time.monotonic() - started:.1f} s")
    changed = asyncio.run(_changed_migrations(dsn))
    if changed:
        raise RuntimeError(
            f"the data set in database {database} was loaded under an older schema: {', '.join(changed)} changed "
            f"since; drop that database (or remove {data_dir}) to load it again"
        )

    with ExitStack() as stack:
        unify_env = {**os.environ, "DATABASE_URL": dsn, "UNIFY_DATA_DIR": str(data_dir / "work" / "unify-data")}
        unify, unify_port, bare, bare_port = start_pair(stack, unify_env, "_bare_context_app", dsn, workdir)
        unify.wait_ready(f"http://127.0.0.1:{unify_port}/readyz")
        bare.wait_ready(f"http://127.0.0.1:{bare_port}/")
        yield Servers(workdir, admin_dsn, dsn, unify_env, unify_port, bare_port, (unify, bare), info)


# ---------------------------------------------------------------------------------------------------------------
# The run


def sequential_duration(args: argparse.Namespace) -> int:
    return args.sequential_duration or max(1, (args.duration + 1) // 2)


def measure(targets: list[Target], args: argparse.Namespace, token: str, admin_dsn: str) -> dict[str, dict[str, Level]]:
    """Warm each target up, then measure each at concurrency 1 and 32, `args.rounds` times, alternating order."""

    def load(target: Target, duration: int, connections: int) -> LoadResult:
        processes = 1 if connections == 1 else args.client_processes
        url = target.base_url + "/"
        return run_python(url, token, "c", duration, connections, processes, paths_file=target.paths_file)

    if args.warmup > 0:
        for target in targets:
            log(f"{target.name}: warm-up {args.warmup} s with {CONNECTIONS} connections")
            load(target, args.warmup, CONNECTIONS)
    results = {target.name: {"c1": Level(), "c32": Level()} for target in targets}
    for round_number in range(1, args.rounds + 1):
        order = targets if round_number % 2 else targets[::-1]
        for target in order:
            asyncio.run(_checkpoint(admin_dsn))  # no dirty buffers left by the previous target
            note = f" (round {round_number} of {args.rounds})" if args.rounds > 1 else ""
            log(f"{target.name}: measuring {sequential_duration(args)} s with 1 connection{note}")
            results[target.name]["c1"].rounds.append(load(target, sequential_duration(args), 1))
            log(f"{target.name}: measuring {args.duration} s with {CONNECTIONS} connections{note}")
            results[target.name]["c32"].rounds.append(load(target, args.duration, CONNECTIONS))
    return results


def probe(targets: list[Target], token: str) -> dict[str, int]:
    """Ask every target for the first lookups once: all must answer 200, and unify must find the known numbers.
    Returns unify's match statuses."""
    statuses: dict[str, int] = {}
    with httpx.Client(timeout=10.0, headers={"Authorization": f"Bearer {token}"}) as client:
        for target in targets:
            for path in target.paths_file.read_text().split()[:50]:
                response = client.get(target.base_url + path)
                if response.status_code != 200:
                    raise RuntimeError(f"{target.name}: GET {path} answered {response.status_code}: {response.text}")
                if target.name == UNIFY:
                    status = response.json()["match"]["status"]
                    statuses[status] = statuses.get(status, 0) + 1
    if not statuses.get("found"):
        raise RuntimeError(f"unify found none of the sampled customers: {statuses}")
    return statuses


async def _forget_run(dsn: str, key_id: str) -> int:
    """Delete the access-log rows the run's key wrote and revoke the key: the data set stays as loaded."""
    conn = await asyncpg.connect(dsn)
    try:
        deleted = await conn.execute(
            "delete from context_access where api_key_id = any($1::uuid[])", [key_id, LOGGED_KEY]
        )
        await conn.execute("update api_key set revoked_at = now() where id = $1::uuid and revoked_at is null", key_id)
        return int(deleted.split()[-1])
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with context_servers(args) as s:
        created = subprocess.run(
            [*unify_command(), "keys", "create", "--scope", "context:read", "--name", "bench-context"],
            env=s.unify_env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = created.stdout.strip().splitlines()[-1]
        key_id = created.stderr.split("created key ", 1)[1].split()[0]
        try:
            lookups = make_lookups(s.dsn, args.lookups, args.unknown, args.seed)
            log(f"{len(lookups.written)} lookups, {lookups.unknown} of them numbers nobody has")
            unify_url, bare_url = f"http://127.0.0.1:{s.unify_port}", f"http://127.0.0.1:{s.bare_port}"
            targets = [
                Target(UNIFY, unify_url, write_paths(s.workdir / "unify.paths", "/v1/context", lookups.written)),
                *(
                    Target(name, bare_url, write_paths(s.workdir / f"{name}.paths", route, lookups.e164))
                    for name, route in BARE_ROUTES.items()
                ),
            ]
            statuses = probe(targets, token)
            results = measure(targets, args, token, s.admin_dsn)
            s.check_alive()
        finally:
            deleted = asyncio.run(_forget_run(s.dsn, key_id))
            log(f"deleted the run's {deleted} access-log rows and revoked its key")

    unify_rps = results[UNIFY]["c32"].median.rps
    ratios = {
        name: round(unify_rps / results[name]["c32"].median.rps, 3) if results[name]["c32"].median.rps else 0.0
        for name in BARE_ROUTES
    }
    ceiling = max(CEILINGS, key=lambda name: results[name]["c32"].median.rps)
    p50 = results[UNIFY]["c1"].median.p50_ms
    return {
        "client": results[UNIFY]["c32"].median.client,
        "data_set": {
            "interactions": args.interactions,
            "customers": args.customers,
            "seed": args.seed,
            "rows": s.data_set.rows,
            "loaded_now": s.data_set.loaded,
        },
        "lookups": len(lookups.written),
        "unknown_lookups": lookups.unknown,
        "probe_match_statuses": statuses,
        "connections": CONNECTIONS,
        "duration_s": args.duration,
        "sequential_duration_s": sequential_duration(args),
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "targets": {name: {level: r.as_dict() for level, r in levels.items()} for name, levels in results.items()},
        "ratios": ratios,
        "ceiling": ceiling,
        "ratio": ratios[ceiling],
        "logged_over_ceiling": round(results[BARE_LOGGED]["c32"].median.rps / results[ceiling]["c32"].median.rps, 3)
        if results[ceiling]["c32"].median.rps
        else 0.0,
        "target_ratio": TARGET_RATIO,
        "p50_c1_ms": None if p50 is None else round(p50, 2),
        "target_p50_ms": TARGET_P50_MS,
        "meets_target": ratios[ceiling] >= TARGET_RATIO and p50 is not None and p50 <= TARGET_P50_MS,
        "clean": all(level.failures == 0 for levels in results.values() for level in levels.values()),
    }


def print_table(report: dict[str, Any]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    data, rounds = report["data_set"], report["rounds"]
    print(
        f"\ncontext benchmark: {data['interactions']:,} interactions of {data['customers']:,} customers; "
        f"{report['lookups']:,} phone numbers in turn ({report['unknown_lookups']:,} unknown)\n"
        f"concurrency 1 for {report['sequential_duration_s']} s, {report['connections']} for "
        f"{report['duration_s']} s per target"
        + (f" × {rounds} rounds (median round shown)" if rounds > 1 else "")
        + f", after {report['warmup_s']} s warm-up; client {report['client']}"
    )
    width = max(len(name) for name in report["targets"])
    print(
        f"{'':<{width}}  {'--- concurrency 1 ---':^26}  {'--- concurrency ' + str(report['connections']) + ' ---':^26}"
    )
    print(
        f"{'target':<{width}}  {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f"  {'non-200':>7} {'sock err':>8}"
    )
    for name, t in report["targets"].items():
        c1, c32 = t["c1"], t["c32"]
        each = "  rounds: " + ", ".join(f"{x:.0f}" for x in c32["rounds_req_per_s"]) if rounds > 1 else ""
        print(
            f"{name:<{width}}  {c1['req_per_s']:>8.1f} {ms(c1['p50_ms']):>8} {ms(c1['p99_ms']):>8}  "
            f"{c32['req_per_s']:>8.1f} {ms(c32['p50_ms']):>8} {ms(c32['p99_ms']):>8}  "
            f"{c1['non_200'] + c32['non_200']:>7} {c1['socket_errors'] + c32['socket_errors']:>8}{each}"
        )
    probe = ", ".join(f"{n} {status}" for status, n in report["probe_match_statuses"].items())
    print(f"unify's answers to the first 50 lookups: {probe}")
    for name, ratio in report["ratios"].items():
        print(f"ratio (unify / {name}) at concurrency {report['connections']} = {ratio:.2f}")
    print(
        f"ratio (bare-logged / {report['ceiling']}) = {report['logged_over_ceiling']:.2f}: the bare select that also "
        "writes the access-log row"
    )
    ratio_ok = report["ratio"] >= report["target_ratio"]
    p50 = report["p50_c1_ms"]
    p50_ok = p50 is not None and p50 <= report["target_p50_ms"]
    print(
        f"headline: ratio against the faster bare route ({report['ceiling']}) = {report['ratio']:.2f}  "
        f"({'meets' if ratio_ok else 'BELOW'} the target of ≥ {report['target_ratio']})"
    )
    print(
        f"unify p50 at concurrency 1 = {ms(p50)} ms  "
        f"({'meets' if p50_ok else 'ABOVE'} the target of ≤ {report['target_p50_ms']:g} ms)"
    )
    if not report["clean"]:
        print("FAILED: some answers were not 200 or sockets failed (see the table)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir",
        default="/tmp/unify-bench-data",
        help="where the embedded PostgreSQL keeps the data set between runs (default /tmp/unify-bench-data)",
    )
    parser.add_argument("--interactions", type=int, default=1_000_000, help="interactions (default 1,000,000)")
    parser.add_argument("--customers", type=int, default=100_000, help="customers (default 100,000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the data set and of the lookups (default 7)")
    parser.add_argument("--lookups", type=int, default=10_000, help="phone numbers asked for in turn (default 10,000)")
    parser.add_argument("--unknown", type=float, default=0.1, help="share of the lookups nobody has (default 0.1)")
    parser.add_argument(
        "--duration", type=int, default=10, help=f"seconds at concurrency {CONNECTIONS} per target (default 10)"
    )
    parser.add_argument(
        "--sequential-duration",
        type=int,
        help="seconds at concurrency 1 per target (default: half of --duration, rounded up)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target (default 2)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measured runs per target, alternating which goes first; the median is reported (default 1)",
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes of the load generator at concurrency 32 (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    if min(args.duration, args.rounds, args.lookups, args.interactions, args.customers, args.client_processes) < 1:
        parser.error("--duration, --rounds, --lookups, --interactions, --customers, --client-processes must be ≥ 1")
    if args.warmup < 0 or (args.sequential_duration is not None and args.sequential_duration < 1):
        parser.error("--warmup must be at least 0, --sequential-duration at least 1")
    if not 0 <= args.unknown < 1:
        parser.error("--unknown is a share: at least 0, below 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return report_main(lambda: run(args), as_json=args.json, show=print_table, ok=lambda r: r["clean"])


if __name__ == "__main__":
    sys.exit(main())
