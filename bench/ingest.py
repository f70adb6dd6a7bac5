"""Ingest throughput of unify against a bare Litestar + asyncpg ceiling, on the same machine, in one run.

What is measured
    `POST /v1/interactions` with one native SMS event per request, each with a unique `external_id` (so every
    request creates an interaction) and one of ~5,000 phone numbers (so identifiers are both created and reused).
    The same bodies, of the same size, go to a bare app (`bench/_bare_app.py`): one handler that decodes the body
    with msgspec and inserts one row through asyncpg. Both run under granian with one worker, against databases
    of one embedded PostgreSQL. The figure that matters is `ratio = unify req/s ÷ bare req/s` (target ≥ 0.5): how
    much of what the stack can do the service keeps, once it authenticates, stores the raw body, upserts the
    interaction, links identifiers and logs every request.

How
    An embedded PostgreSQL starts in a temporary directory. `unify serve --workers 1` (which migrates) and the
    bare app start as subprocesses; an `ingest` key is created with `unify keys create`. Each target then gets a
    warm-up (default 2 s) and a measured run (default 10 s) of 32 keep-alive connections, each sending its next
    request as soon as the previous one is answered. The load comes from `wrk` (with a Lua script) when it is on
    PATH (`apt-get install wrk`), otherwise from Python processes speaking HTTP/1.1 over asyncio streams. req/s
    counts 2xx answers only; latencies are client-side, from sending a request to its whole answer.
    Afterwards the rows written by the measured runs are counted: every acknowledged event must be stored
    (`stored N / acknowledged M`; requests left unanswered, such as those wrk cuts off in flight when it stops,
    may be stored too).
    Everything started is stopped and the temporary directory removed at the end, on Ctrl-C and on error too.

    The client, both servers and PostgreSQL share the machine's cores, and the two targets are measured one after
    the other, so anything else running skews the ratio: on a shared machine, use `--rounds 3` (targets alternate
    which goes first; the median round of each is reported).

Run
    make bench                                   # = .venv/bin/python bench/ingest.py
    .venv/bin/python bench/ingest.py --duration 30 --rounds 3
    .venv/bin/python bench/ingest.py --client python --json

The exit status is 1 when the stored and acknowledged counts disagree (or a server failed), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import math
import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
TARGET_RATIO = 0.5
PHONE_NUMBERS = 5000
WARMUP_PREFIX, MEASURED_PREFIX = "w", "m"  # external ids: "w-…" in warm-ups, "m<round>-…" in measured rounds

# One event; `%s` is the external id, `%04d` the phone number's last four digits. The same template (printf
# syntax) is used by the Lua script and by the Python client, so both send identical bodies.
BODY_TEMPLATE = (
    '{"source":"bench","external_id":"%s","channel":"sms","direction":"inbound",'
    '"occurred_at":"2026-11-02T09:30:00Z","status":"received",'
    '"customer":{"identifiers":[{"kind":"phone","value":"+1415555%04d"}]},'
    '"text":"my bill is wrong again","details":{"type":"sms","segments":1}}'
)
EXTERNAL_ID_FORMAT = "%s-%02d-%08d"  # prefix, client thread or process, sequence number: fixed width


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class LoadResult:
    """What one load run saw. Latencies are of 2xx and non-2xx answers alike."""

    client: str
    duration_s: float
    ok: int  # 2xx answers: what the client was told is stored
    non_2xx: int
    socket_errors: int
    # Requests that may have been stored without the client hearing so: cut off in flight when wrk stopped (the
    # Python client lets them finish), or lost to a socket error.
    unanswered: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def rps(self) -> float:
        return self.ok / self.duration_s if self.duration_s > 0 else 0.0


@dataclass
class TargetResult:
    """The measured rounds of one target, and how many of their events the database holds afterwards."""

    name: str
    rounds: list[LoadResult] = field(default_factory=list)
    stored: int = 0

    @property
    def median(self) -> LoadResult:
        """The round with the median throughput (the lower one of the middle two for an even count)."""
        ordered = sorted(self.rounds, key=lambda r: r.rps)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def acknowledged(self) -> int:
        return sum(r.ok for r in self.rounds)

    @property
    def unanswered(self) -> int:
        return sum(r.unanswered for r in self.rounds)

    @property
    def consistent(self) -> bool:
        """Every acknowledged event is stored; beyond those, at most the unanswered ones."""
        return self.acknowledged <= self.stored <= self.acknowledged + self.unanswered

    def as_dict(self) -> dict[str, Any]:
        median = self.median
        return {
            "req_per_s": round(median.rps, 1),
            "p50_ms": None if median.p50_ms is None else round(median.p50_ms, 2),
            "p99_ms": None if median.p99_ms is None else round(median.p99_ms, 2),
            "rounds_req_per_s": [round(r.rps, 1) for r in self.rounds],
            "acknowledged": self.acknowledged,
            "non_2xx": sum(r.non_2xx for r in self.rounds),
            "socket_errors": sum(r.socket_errors for r in self.rounds),
            "unanswered": self.unanswered,
            "stored": self.stored,
            "consistent": self.consistent,
        }


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[rank]


# ---------------------------------------------------------------------------------------------------------------
# Load from wrk

_LUA = string.Template(r"""
-- Generated by bench/ingest.py: POST one event per request, each with a unique external id.
local prefix, token, phones = "$prefix", "$token", $phones
local template = [[$template]]
local id_format = "$id_format"
local threads = {}
id, counter, started, ok, bad = 0, 0, 0, 0, 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- wrk calls request() once on the first thread, after init, to check it: that one is never sent.
  if id == 0 then started = -1 end
  math.randomseed(os.time() + id * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  counter = counter + 1
  started = started + 1
  local body = string.format(template, string.format(id_format, prefix, id, counter), math.random(0, phones - 1))
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local s, o, b = 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("started")
    o = o + thread:get("ok")
    b = b + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "started": %d, "ok": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.duration, s, o, b, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""")


def run_wrk(url: str, token: str, prefix: str, duration: int, connections: int, workdir: Path) -> LoadResult:
    script = workdir / f"load-{prefix}.lua"
    script.write_text(
        _LUA.substitute(
            prefix=prefix, token=token, phones=PHONE_NUMBERS, template=BODY_TEMPLATE, id_format=EXTERNAL_ID_FORMAT
        )
    )
    threads = max(1, min(2, connections))
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    figures = json.loads(line.removeprefix("BENCH_RESULT "))
    answered = figures["ok"] + figures["non_2xx"]
    return LoadResult(
        client="wrk",
        duration_s=figures["duration_us"] / 1e6,
        ok=figures["ok"],
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        unanswered=max(0, figures["started"] - answered),
        p50_ms=figures["p50_us"] / 1000 if answered else None,
        p99_ms=figures["p99_us"] / 1000 if answered else None,
    )


# ---------------------------------------------------------------------------------------------------------------
# Load from Python processes (when wrk is not installed)


@dataclass
class _WorkerJob:
    host: str
    port: int
    path: str
    token: str
    prefix: str
    worker: int
    connections: int
    start_at: float  # wall-clock time at which every process starts sending
    duration: float
    # Instead of POSTing events: GET these paths (one a line of this file) in turn, starting at an offset of its own.
    paths_file: str = ""


@dataclass
class _WorkerResult:
    ok: int = 0
    non_2xx: int = 0
    socket_errors: int = 0
    finished_at: float = 0.0
    latencies: list[float] = field(default_factory=list)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns its status and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") != "close"


async def _drive(job: _WorkerJob, paths: list[str] | None = None) -> _WorkerResult:
    result = _WorkerResult()
    sequence = 0
    deadline = job.start_at + job.duration
    head = (
        f"POST {job.path} HTTP/1.1\r\nHost: {job.host}:{job.port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {job.token}\r\n"
    ).encode()
    gets = [
        f"GET {path} HTTP/1.1\r\nHost: {job.host}:{job.port}\r\nAuthorization: Bearer {job.token}\r\n\r\n".encode()
        for path in paths or []
    ]
    offset = random.randrange(len(gets)) if gets else 0

    async def connection() -> None:
        nonlocal sequence
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while time.time() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(job.host, job.port)
                sequence += 1
                if gets:
                    request = gets[(offset + sequence) % len(gets)]
                else:
                    external_id = EXTERNAL_ID_FORMAT % (job.prefix, job.worker, sequence)
                    body = (BODY_TEMPLATE % (external_id, random.randrange(PHONE_NUMBERS))).encode()
                    request = head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
                started = time.perf_counter()
                writer.write(request)
                assert reader is not None
                status, keep_alive = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                if 200 <= status < 300:
                    result.ok += 1
                else:
                    result.non_2xx += 1
                if not keep_alive:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.socket_errors += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    await asyncio.sleep(max(0.0, job.start_at - time.time()))
    await asyncio.gather(*(connection() for _ in range(job.connections)))
    result.finished_at = time.time()
    return result


def run_python(
    url: str,
    token: str,
    prefix: str,
    duration: int,
    connections: int,
    processes: int,
    *,
    paths_file: Path | None = None,
) -> LoadResult:
    """Split the connections over `processes` copies of this script (`--load-worker`), started together. With
    `paths_file` they GET the paths it lists (one a line, on `url`'s host) in turn instead of POSTing events."""
    parsed = httpx.URL(url)
    processes = max(1, min(processes, connections))
    start_at = time.time() + 1.5  # time for every process to start and import
    jobs = [
        _WorkerJob(
            host=parsed.host,
            port=parsed.port or 80,
            path=parsed.raw_path.decode(),
            token=token,
            prefix=prefix,
            worker=index,
            connections=connections // processes + (1 if index < connections % processes else 0),
            start_at=start_at,
            duration=duration,
            paths_file=str(paths_file) if paths_file else "",
        )
        for index in range(processes)
    ]
    workers: list[subprocess.Popen[str]] = []
    try:
        for job in jobs:
            argv = [sys.executable, str(Path(__file__).resolve()), "--load-worker", json.dumps(asdict(job))]
            workers.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        outputs = [worker.communicate()[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    if any(worker.returncode for worker in workers):
        raise RuntimeError("a load generator process failed")
    results = [_WorkerResult(**json.loads(output)) for output in outputs]
    latencies = sorted(x for r in results for x in r.latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return LoadResult(
        client=f"python ({processes} processes)",
        duration_s=max(r.finished_at for r in results) - start_at,
        ok=sum(r.ok for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        unanswered=sum(r.socket_errors for r in results),
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
    )


# ---------------------------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server subprocess in its own session, so that it and its workers are stopped together."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                argv, env=env, cwd=PROJECT_DIR, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_ready(self, url: str, *, expect: int | None = 200, timeout: float = 90.0) -> None:
        """Poll `url` until it answers (with `expect`, if given) or the process exits."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    response = client.get(url)
                    if expect is None or response.status_code == expect:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        server.stop()


def start_pair(
    stack: ExitStack, unify_env: dict[str, str], bare_module: str, bare_dsn: str, workdir: Path
) -> tuple[Server, int, Server, int]:
    """Start `unify serve` (one worker) and a bare app (`bench/<bare_module>.py` under granian, one worker) on free
    ports, each stopped when `stack` closes. Returns (unify, its port, bare, its port); neither is waited for."""
    unify_port, bare_port = free_port(), free_port()
    log(f"starting unify on port {unify_port}")
    unify = stack.enter_context(
        running(
            Server(
                "unify",
                [*unify_command(), "serve", "--host", "127.0.0.1", "--port", str(unify_port), "--workers", "1"],
                unify_env,
                workdir / "unify.log",
            )
        )
    )
    log(f"starting the bare app on port {bare_port}")
    bare = stack.enter_context(
        running(
            Server(
                "bare app",
                [
                    sys.executable,
                    *"-m granian --interface asgi --workers 1 --no-access-log".split(),
                    *("--host", "127.0.0.1", "--port", str(bare_port)),
                    *("--working-dir", str(BENCH_DIR), f"{bare_module}:app"),
                ],
                {**os.environ, "DATABASE_URL": bare_dsn},
                workdir / "bare.log",
            )
        )
    )
    return unify, unify_port, bare, bare_port


def unify_command() -> list[str]:
    """The `unify` console script beside this interpreter (as `make` installs it), else the module."""
    script = Path(sys.executable).with_name("unify")
    return [str(script)] if script.exists() else [sys.executable, "-m", "unify.cli"]


# ---------------------------------------------------------------------------------------------------------------
# Database


async def _fetch_count(dsn: str, query: str, pattern: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(query, pattern))
    finally:
        await conn.close()


def settled_count(dsn: str, query: str, pattern: str) -> int:
    """Count the rows whose external id is `like pattern` once requests the server was still working on when the
    client stopped have been committed: when two counts 0.25 s apart agree."""
    count = asyncio.run(_fetch_count(dsn, query, pattern))
    for _ in range(20):
        time.sleep(0.25)
        again = asyncio.run(_fetch_count(dsn, query, pattern))
        if again == count:
            break
        count = again
    return count


async def _checkpoint(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("checkpoint")
    finally:
        await conn.close()


async def _create_databases(admin_dsn: str, names: list[str]) -> None:
    from unify.embedded import ensure_database

    for name in names:
        await ensure_database(admin_dsn, name)


# ---------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Target:
    name: str
    url: str
    dsn: str
    count_query: str  # counts the rows whose external id is `like $1`


def measure(
    targets: list[Target], args: argparse.Namespace, token: str, admin_dsn: str, workdir: Path
) -> list[TargetResult]:
    """Warm each target up, then measure them in turn, `args.rounds` times, alternating which goes first."""
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)

    def load(target: Target, prefix: str, duration: int) -> LoadResult:
        if use_wrk:
            return run_wrk(target.url, token, prefix, duration, args.connections, workdir)
        return run_python(target.url, token, prefix, duration, args.connections, args.client_processes)

    if args.warmup > 0:
        for target in targets:
            log(f"{target.name}: warm-up {args.warmup} s")
            load(target, WARMUP_PREFIX, args.warmup)
            settled_count(target.dsn, target.count_query, f"{WARMUP_PREFIX}-%")
    results = {target.name: TargetResult(target.name) for target in targets}
    for round_number in range(1, args.rounds + 1):
        order = targets if round_number % 2 else targets[::-1]
        for target in order:
            asyncio.run(_checkpoint(admin_dsn))  # start each round with no dirty buffers left by the previous one
            log(
                f"{target.name}: measuring {args.duration} s with {args.connections} connections "
                f"(round {round_number} of {args.rounds})"
            )
            results[target.name].rounds.append(load(target, f"{MEASURED_PREFIX}{round_number}", args.duration))
    for target in targets:
        results[target.name].stored = settled_count(target.dsn, target.count_query, f"{MEASURED_PREFIX}%")
    return list(results.values())


@dataclass
class Targets:
    """The two servers under test, each on its own database of one embedded PostgreSQL."""

    workdir: Path
    admin_dsn: str
    unify_dsn: str
    bare_dsn: str
    unify_env: dict[str, str]
    unify_port: int
    bare_port: int
    servers: tuple[Server, Server]

    def check_alive(self) -> None:
        for server in self.servers:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} died during the run:\n{server.log_tail()}")


@contextmanager
def bench_targets(prefix: str) -> Iterator[Targets]:
    """Start the embedded PostgreSQL, `unify serve --workers 1` and the bare app; stop all of them afterwards."""
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")  # XDG_RUNTIME_DIR unset
    from unify.embedded import dsn_for_database, start_server
    from unify.logging import configure_logging

    configure_logging("console", "warning")  # unify's own log lines to stderr, and only the ones that matter

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    # Registered before the server's own handler so that it runs after it (atexit is last-in, first-out):
    # the embedded server is stopped and its data deleted first, then the rest of the directory goes.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    log(f"starting embedded PostgreSQL in {workdir}")
    admin_dsn = start_server(workdir / "pgdata", cleanup="delete")
    asyncio.run(_create_databases(admin_dsn, ["unify", "bare"]))
    unify_dsn = dsn_for_database(admin_dsn, "unify")
    bare_dsn = dsn_for_database(admin_dsn, "bare")

    with ExitStack() as stack:
        unify_env = {**os.environ, "DATABASE_URL": unify_dsn, "UNIFY_DATA_DIR": str(workdir / "unify-data")}
        unify, unify_port, bare, bare_port = start_pair(stack, unify_env, "_bare_app", bare_dsn, workdir)
        unify.wait_ready(f"http://127.0.0.1:{unify_port}/readyz")
        bare.wait_ready(f"http://127.0.0.1:{bare_port}/", expect=None)  # answers 405 to GET once it serves
        yield Targets(workdir, admin_dsn, unify_dsn, bare_dsn, unify_env, unify_port, bare_port, (unify, bare))


def run(args: argparse.Namespace) -> dict[str, Any]:
    with bench_targets("unify-bench-") as t:
        workdir, admin_dsn, unify_dsn, bare_dsn = t.workdir, t.admin_dsn, t.unify_dsn, t.bare_dsn
        unify_env, unify_port, bare_port = t.unify_env, t.unify_port, t.bare_port
        created = subprocess.run(
            [*unify_command(), "keys", "create", "--scope", "ingest", "--name", "bench"],
            env=unify_env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = created.stdout.strip().splitlines()[-1]

        targets = [
            # The bare app first (in odd rounds): it leaves less behind in PostgreSQL for the next run.
            Target(
                "bare",
                f"http://127.0.0.1:{bare_port}/",
                bare_dsn,
                "select count(*) from hit where external_id like $1",
            ),
            Target(
                "unify",
                f"http://127.0.0.1:{unify_port}/v1/interactions",
                unify_dsn,
                "select count(*) from interaction where source = 'bench' and external_id like $1",
            ),
        ]
        results = {r.name: r for r in measure(targets, args, token, admin_dsn, workdir)}
        t.check_alive()

    unify_rps, bare_rps = results["unify"].median.rps, results["bare"].median.rps
    ratio = unify_rps / bare_rps if bare_rps else 0.0
    return {
        "client": results["unify"].median.client,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "targets": {name: r.as_dict() for name, r in results.items()},
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "consistent": all(r.consistent for r in results.values()),
    }


def print_table(report: dict[str, Any], *, title: str = "ingest benchmark", subject: str = "unify") -> None:
    """The result table both benchmarks print: one row per target, the ratio, and the stored/acknowledged check."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rounds = report["rounds"]
    print(
        f"\n{title}: {report['connections']} connections, {report['duration_s']} s per target"
        + (f" × {rounds} rounds (median round shown)" if rounds > 1 else "")
        + f", after {report['warmup_s']} s warm-up; client {report['client']}"
    )
    if "bare_bodies" in report:
        print(f"bare app fed {report['bare_bodies']}")
    width = max(8, *(len(name) for name in report["targets"]))
    print(f"{'target':<{width}} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'sock err':>9}")
    for name, t in report["targets"].items():
        each = "  rounds: " + ", ".join(f"{x:.0f}" for x in t["rounds_req_per_s"]) if rounds > 1 else ""
        print(
            f"{name:<{width}} {t['req_per_s']:>9.1f} {ms(t['p50_ms']):>8} {ms(t['p99_ms']):>8} "
            f"{t['non_2xx']:>8} {t['socket_errors']:>9}{each}"
        )
    verdict = "meets" if report["meets_target"] else "BELOW"
    print(f"ratio ({subject} / bare) = {report['ratio']:.2f}  ({verdict} the target of ≥ {report['target_ratio']})")
    for name, t in report["targets"].items():
        extra = f" (+{t['unanswered']} sent but unanswered, e.g. in flight at the stop)" if t["unanswered"] else ""
        if t.get("reused_bodies"):
            extra += f" ({t['reused_bodies']} requests repeated a body: the pool ran out)"
        state = "ok" if t["consistent"] else "MISMATCH"
        print(f"{name}: stored {t['stored']} / acknowledged {t['acknowledged']}{extra}  {state}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of measured load per target (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per target (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measured runs per target, alternating which goes first; the median is reported (default 1)",
    )
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator (default: wrk if on PATH)"
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes of the Python load generator (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--load-worker", metavar="JOB", help=argparse.SUPPRESS)  # one Python load process
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.rounds) < 1 or args.warmup < 0:
        parser.error("--duration, --connections and --rounds must be at least 1, --warmup at least 0")
    if args.client == "wrk" and shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk), use --client python")
    return args


def _exit_on_sigterm(signum: int, frame: object) -> None:
    log("terminated; cleaning up")
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: servers stopped, temporary directory removed


Report = dict[str, Any]


def report_main(
    run: Callable[[], Report], *, as_json: bool, show: Callable[[Report], None], ok: Callable[[Report], bool]
) -> int:
    """How every benchmark ends: SIGTERM and Ctrl-C clean up (status 130), a failed step is logged with what the
    failing command printed (status 1), then the report is printed (as JSON, or by `show`) and the status is 0 when
    `ok` says the report meets its bar, else 1."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        report = run()
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or ""
        log(f"failed: {exc}\n{detail}")
        return 1
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        show(report)
    return 0 if ok(report) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_worker:
        job = _WorkerJob(**json.loads(args.load_worker))
        paths = Path(job.paths_file).read_text().split() if job.paths_file else None
        print(json.dumps(asdict(asyncio.run(_drive(job, paths)))))
        return 0
    return report_main(lambda: run(args), as_json=args.json, show=print_table, ok=lambda r: r["consistent"])


if __name__ == "__main__":
    sys.exit(main())
