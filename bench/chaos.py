"""Chaos run: every webhook unify acknowledged is stored exactly once, across a `kill -9` of the whole server.

What is checked
    The promise of the webhook routes: a 2xx means the contact is committed and will be found again; anything else
    (a 5xx, a dropped connection, a timeout) makes the platform retry, so it is fine as long as it is honest. A mixed
    load of signed platform deliveries is sent to `unify serve --workers 2`, the server's whole process group
    (granian main + workers) is killed with SIGKILL in the middle of the run and started again on the same port and
    database, and the senders retry through the outage like platforms do. At the end every delivery is looked up in
    PostgreSQL by its event key (`interaction.source` + `external_id`):
        missing     acknowledged (2xx) deliveries whose interaction does not exist          must be 0
        duplicated  event keys of the run held by more than one interaction                  must be 0
        raw_rows    `raw_event` rows carrying each delivery's key (> 1 after a retry of a delivery that was
                    committed but whose answer was lost: allowed, reported as a distribution)

The load
    Deliveries rotate over four connectors, each with a unique platform id, signed the way the platform signs
    (builders of bench/webhooks.py and the connectors' own signature functions):
        twilio-voice  status callbacks (completed, ringing, initiated, …), unique CallSid   X-Twilio-Signature
        twilio-sms    incoming SMS, unique MessageSid                                      X-Twilio-Signature
        chat          unify's native chat JSON, unique message_id (key `platform:id`)      X-Unify-Signature
        postmark      inbound email JSON, unique MessageID                                 HTTP basic auth
    Before the load, one delivery of each kind is verified and parsed in-process by its connector, which must yield
    the event key the check later looks up. `--senders` concurrent senders, split over `--client-processes`
    processes speaking HTTP/1.1 over asyncio streams (keep-alive), each take the next delivery and behave like a
    platform: on a connection error, a timeout (`--timeout`) or a 5xx, they send the SAME request again (same body,
    same signature and headers) after a short exponential backoff (10 ms doubling up to 500 ms, with jitter), until a
    2xx or `--give-up` seconds; a 4xx is final (platforms do not retry it). Each delivery records whether it was
    acknowledged and its number of attempts.

How
    An embedded PostgreSQL starts in a temporary directory; the database is migrated and the connectors configured
    in the settings table (Twilio auth token + public base URL, chat secret with a one-hour timestamp skew so that
    a delivery retried through a long outage still verifies, Postmark basic auth), then
    `unify serve --workers 2` starts. The kill comes `--kill-after` into the run: a number below 1 is a fraction of
    the deliveries stored (polled in the database), otherwise seconds after the senders start (`4s` also works).
    After `--down` seconds (default 1) the server is started again, and the outage (kill → `/readyz` answers 200
    again) is timed. Everything started is stopped and the temporary directory removed at the end, on Ctrl-C,
    SIGTERM and on error too. `tests/test_chaos.py` runs the same machinery with 600 deliveries.

Run
    .venv/bin/python bench/chaos.py                                  # 20,000 deliveries, killed halfway
    .venv/bin/python bench/chaos.py --deliveries 5000 --kill-after 3s
    .venv/bin/python bench/chaos.py --json

Printed: requests sent, acknowledged, retried (attempts beyond the first), missing, duplicated, raw rows per
delivery, the outage and the throughput (acknowledged deliveries per second of the whole run, outage included).
The exit status is 1 when anything acknowledged is missing or duplicated, when a delivery was never acknowledged
(rejected with a 4xx, or given up), when the kill did not happen, or when a server failed; else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg

# bench/ is not a package: this script's directory is on sys.path when it runs (tests put it there), so the other
# benchmarks import as `ingest` and `webhooks`.
from ingest import PROJECT_DIR, Server, _read_response, free_port, log, report_main, unify_command
from webhooks import FORM, SignedSmsBodies, _basic, _fixture, _unify_headers

from connectors._base import ConnectorSettings, WebhookRequest
from connectors._twilio import twilio_signature
from connectors.registry import get_connector

CONNECTORS = ("twilio-voice", "twilio-sms", "chat", "postmark")
SOURCES = {"twilio-voice": "twilio-voice", "twilio-sms": "twilio-sms", "chat": "chat", "postmark": "postmark"}
VOICE_FIXTURES = (
    "incoming-completed.txt",
    "outbound-completed.txt",
    "outbound-ringing.txt",
    "outbound-initiated.txt",
    "outbound-in-progress.txt",
)
CHAT_PLATFORM = "livechat-acme"
SERVER_WORKERS = 2
PHONE_NUMBERS = 5000

# ---------------------------------------------------------------------------------------------------------------
# Deliveries: built from (run secrets, index) alone, so that the load processes and the check agree on them.


@dataclass(frozen=True)
class RunSecrets:
    tag: str  # 8 hex digits, unique to the run: part of every platform id
    public_base_url: str  # http://127.0.0.1:<port>, what the Twilio signatures are computed over
    twilio_token: str
    chat_secret: str
    postmark_basic: str  # user:password
    chat_stamp: int  # the chat signatures' timestamp (the run's start)


@dataclass(frozen=True)
class Delivery:
    index: int
    connector: str
    content_type: str
    headers: dict[str, str]
    body: bytes
    source: str
    external_id: str

    @property
    def key(self) -> str:
        """As `raw_event.event_keys` writes it."""
        return f"{self.source}/{self.external_id}"


def connector_of(index: int) -> str:
    return CONNECTORS[index % len(CONNECTORS)]


def external_id_of(index: int, tag: str) -> tuple[str, str]:
    """(source, external_id) of delivery `index`: what the event key of its interaction must be."""
    connector = connector_of(index)
    if connector == "twilio-voice":
        return "twilio-voice", f"CA{tag}{index:024x}"
    if connector == "twilio-sms":
        return "twilio-sms", f"SM{tag}{index:024x}"
    if connector == "chat":
        return "chat", f"{CHAT_PLATFORM}:m-{tag}-{index}"
    return "postmark", f"{tag}-{index:012x}-4f2a-9e7d-chaos"


class Builder:
    """Builds the signed request of any delivery of one run."""

    def __init__(self, s: RunSecrets) -> None:
        self.s = s
        self.sms = SignedSmsBodies(s.public_base_url + "/v1/webhooks/twilio-sms", s.twilio_token)
        self.voice = [
            parse_qsl(_fixture("twilio-voice", name).decode(), keep_blank_values=True) for name in VOICE_FIXTURES
        ]
        self.chat = json.loads(_fixture("chat", "message.json"))
        self.postmark = json.loads(_fixture("postmark", "inbound.json"))
        self.stamp = datetime.fromtimestamp(s.chat_stamp, UTC)

    def build(self, index: int) -> Delivery:
        connector = connector_of(index)
        source, external_id = external_id_of(index, self.s.tag)
        phone = f"+1415555{index % PHONE_NUMBERS:04d}"
        headers: dict[str, str]
        if connector == "twilio-voice":
            fields = []
            for name, value in self.voice[(index // len(CONNECTORS)) % len(self.voice)]:
                if name == "CallSid":
                    value = external_id
                elif name in ("From", "Caller", "To", "Called") and value.startswith("+1415"):
                    value = phone  # the customer's side of the call
                fields.append((name, value))
            url = self.s.public_base_url + "/v1/webhooks/twilio-voice"
            body = urlencode(fields).encode()
            headers = {"X-Twilio-Signature": twilio_signature(self.s.twilio_token, url, fields)}
            content_type = FORM
        elif connector == "twilio-sms":
            signature, text = self.sms.make(external_id, phone)
            body, headers, content_type = text.encode(), {"X-Twilio-Signature": signature}, FORM
        elif connector == "chat":
            message = self.chat | {
                "platform": CHAT_PLATFORM,
                "conversation_id": f"c-{self.s.tag}-{index % 997}",
                "message_id": f"m-{self.s.tag}-{index}",
                "visitor_id": f"v-{index % PHONE_NUMBERS}",
                "authenticated_id": f"cust-{index % PHONE_NUMBERS}",
                "email": f"visitor{index % PHONE_NUMBERS}@example.com",
                "phone": phone,
            }
            body = json.dumps(message).encode()
            headers, content_type = _unify_headers(self.s.chat_secret, body, self.stamp), "application/json"
        else:
            message = self.postmark | {"MessageID": external_id, "From": f"sender{index % PHONE_NUMBERS}@example.com"}
            message["FromFull"] = message["FromFull"] | {"Email": message["From"]}
            body = json.dumps(message).encode()
            headers, content_type = {"Authorization": _basic(self.s.postmark_basic)}, "application/json"
        return Delivery(index, connector, content_type, headers, body, source, external_id)

    def http_request(self, delivery: Delivery, host: str, port: int) -> bytes:
        head = (
            f"POST /v1/webhooks/{delivery.connector} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: {delivery.content_type}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in delivery.headers.items())
            + f"Content-Length: {len(delivery.body)}\r\n\r\n"
        )
        return head.encode() + delivery.body

    def check(self) -> None:
        """One delivery of each connector, verified and parsed in-process: it must yield the key the check uses."""
        for index in range(len(CONNECTORS)):
            d = self.build(index)
            connector = get_connector(d.connector)
            assert connector is not None
            request = WebhookRequest(
                method="POST",
                url=f"{self.s.public_base_url}/v1/webhooks/{d.connector}",
                headers={"content-type": d.content_type} | {k.lower(): v for k, v in d.headers.items()},
                body=d.body,
                received_at=self.stamp,
                query=(),
            )
            settings = ConnectorSettings(**connector_settings(self.s)[d.connector])
            connector.verify(request, settings)
            events = connector.parse(request, settings).events
            keys = [(e.source, e.external_id) for e in events]
            if keys != [(d.source, d.external_id)]:
                raise RuntimeError(f"{d.connector}: the delivery parses to {keys}, not {(d.source, d.external_id)}")


def connector_settings(s: RunSecrets) -> dict[str, dict[str, Any]]:
    return {
        "twilio-voice": {"secret": s.twilio_token, "public_base_url": s.public_base_url},
        "twilio-sms": {"secret": s.twilio_token, "public_base_url": s.public_base_url},
        "chat": {"secret": s.chat_secret, "max_skew_seconds": 3600},
        "postmark": {"basic_auth": s.postmark_basic},
    }


# ---------------------------------------------------------------------------------------------------------------
# Senders (one `--load-worker` process each share)


@dataclass
class SenderJob:
    secrets: dict[str, Any]
    host: str
    port: int
    deliveries: int
    worker: int  # takes deliveries worker, worker + workers, …
    workers: int
    senders: int
    timeout: float
    give_up: float
    output: str  # where the process writes its SenderResult as JSON (a pipe would fill up and block it)


@dataclass
class SenderResult:
    # Per delivery: [index, outcome, attempts] with outcome "a" acknowledged (2xx), "r" rejected (4xx), "g" gave up.
    outcomes: list[list[Any]] = field(default_factory=list)
    sent: int = 0  # requests written, first attempts and retries
    answers: dict[str, int] = field(default_factory=dict)  # per status code, and "error" / "timeout"
    started_at: float = 0.0
    finished_at: float = 0.0


def _backoff(attempt: int) -> float:
    return min(0.5, 0.01 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


async def send_all(job: SenderJob) -> SenderResult:
    builder = Builder(RunSecrets(**job.secrets))
    mine = range(job.worker, job.deliveries, job.workers)
    requests = [(i, builder.http_request(builder.build(i), job.host, job.port)) for i in mine]
    result = SenderResult(started_at=time.time())
    answers: Counter[str] = Counter()
    queue = iter(requests)

    async def sender() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None

        def drop() -> None:
            nonlocal reader, writer
            if writer is not None:
                writer.close()
            reader = writer = None

        for index, request in queue:
            attempts, first = 0, time.monotonic()
            while True:
                attempts += 1
                result.sent += 1
                status = None
                try:
                    if writer is None:
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(job.host, job.port), job.timeout
                        )
                    writer.write(request)
                    assert reader is not None
                    status, keep_alive = await asyncio.wait_for(_read_response(reader), job.timeout)
                    answers[str(status)] += 1
                    if not keep_alive:
                        drop()
                except TimeoutError:
                    answers["timeout"] += 1
                    drop()
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    answers["error"] += 1
                    drop()
                if status is not None and 200 <= status < 300:
                    result.outcomes.append([index, "a", attempts])
                    break
                if status is not None and 400 <= status < 500 and status not in (408, 429):
                    result.outcomes.append([index, "r", attempts])
                    break
                if time.monotonic() - first > job.give_up:
                    result.outcomes.append([index, "g", attempts])
                    break
                await asyncio.sleep(_backoff(attempts))
        drop()

    await asyncio.gather(*(sender() for _ in range(job.senders)))
    result.answers = dict(answers)
    result.finished_at = time.time()
    return result


# ---------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Config:
    deliveries: int = 20_000
    kill_after: str = "0.5"
    down: float = 1.0
    senders: int = 32
    client_processes: int = 2
    timeout: float = 10.0
    give_up: float = 120.0


def kill_point(value: str) -> tuple[str, float]:
    """("fraction", f) for a number below 1, else ("seconds", s); a trailing `s` forces seconds."""
    text = value.strip().lower()
    if text.endswith("s"):
        return "seconds", float(text[:-1])
    number = float(text)
    return ("fraction", number) if number < 1 else ("seconds", number)


class Run:
    """The servers, the load processes and the database connection of one run; `close()` stops them all."""

    def __init__(self, config: Config, dsn: str, workdir: Path) -> None:
        self.config, self.dsn, self.workdir = config, dsn, workdir
        self.port = free_port()
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "UNIFY_DATABASE_URL", "UNIFY_PORT")
        } | {
            "DATABASE_URL": dsn,
            "UNIFY_DATA_DIR": str(workdir / "unify-data"),
            "UNIFY_LOG_FORMAT": "json",
            "UNIFY_LOG_LEVEL": "warning",
        }
        self.servers: list[Server] = []
        self.senders: list[subprocess.Popen[bytes]] = []
        self.outputs: list[Path] = []
        self.secrets = RunSecrets(
            tag=os.urandom(4).hex(),
            public_base_url=f"http://127.0.0.1:{self.port}",
            twilio_token=os.urandom(16).hex(),
            chat_secret=os.urandom(16).hex(),
            postmark_basic=f"postmark:chaos-{os.urandom(8).hex()}",
            chat_stamp=int(time.time()),
        )
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None

    def db(self, query: str, *params: Any) -> list[asyncpg.Record]:
        if self.conn is None:
            self.conn = self.loop.run_until_complete(asyncpg.connect(self.dsn))
        return self.loop.run_until_complete(self.conn.fetch(query, *params))

    def prepare(self) -> None:
        from unify.connector_settings import save_connector_settings
        from unify.store import connect, migrate

        async def work() -> None:
            conn = await connect(self.dsn)
            try:
                await migrate(conn)
                for name, values in connector_settings(self.secrets).items():
                    await save_connector_settings(conn, name, **values)
            finally:
                await conn.close()

        self.loop.run_until_complete(work())
        Builder(self.secrets).check()

    def start_server(self) -> Server:
        n = len(self.servers) + 1
        log(f"starting unify serve --workers {SERVER_WORKERS} on port {self.port} (#{n})")
        argv = [*unify_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        server = Server(
            f"unify #{n}", [*argv, "--workers", str(SERVER_WORKERS)], self.env, self.workdir / f"unify-{n}.log"
        )
        self.servers.append(server)
        server.wait_ready(f"http://127.0.0.1:{self.port}/readyz")
        return server

    def kill_server(self, server: Server) -> None:
        """SIGKILL to the whole process group (granian main + workers), then wait until none of it is left."""
        pgid = server.process.pid
        os.killpg(pgid, signal.SIGKILL)
        server.process.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def start_senders(self) -> None:
        c = self.config
        processes = max(1, min(c.client_processes, c.senders))
        for worker in range(processes):
            job = SenderJob(
                secrets=asdict(self.secrets),
                host="127.0.0.1",
                port=self.port,
                deliveries=c.deliveries,
                worker=worker,
                workers=processes,
                senders=c.senders // processes + (1 if worker < c.senders % processes else 0),
                timeout=c.timeout,
                give_up=c.give_up,
                output=str(self.workdir / f"senders-{worker}.json"),
            )
            self.outputs.append(Path(job.output))
            argv = [sys.executable, str(Path(__file__).resolve()), "--load-worker", json.dumps(asdict(job))]
            self.senders.append(subprocess.Popen(argv, cwd=PROJECT_DIR))

    def stored(self) -> int:
        return int(self.db("select count(*) from interaction where source = any($1::text[])", list(CONNECTORS))[0][0])

    def close(self) -> None:
        for process in self.senders:
            if process.poll() is None:
                process.kill()
                process.wait()
        for server in self.servers:
            server.stop()
        if self.conn is not None:
            self.loop.run_until_complete(self.conn.close())
        self.loop.close()


def run(config: Config, *, dsn: str | None = None, workdir: Path | None = None) -> dict[str, Any]:
    """One chaos run. Without `dsn`, an embedded PostgreSQL in a temporary directory (removed at exit); `workdir`
    (default: a temporary directory, removed afterwards) holds the server logs and the raw-body key."""
    with ExitStack() as stack:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="unify-chaos-"))
            # Registered before the server's own exit hook, so that it runs after it (atexit is last-in, first-out).
            atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        if dsn is None:
            from unify.embedded import dsn_for_database, ensure_database, start_server

            log(f"starting embedded PostgreSQL in {workdir}")
            admin = start_server(workdir / "pgdata", cleanup="delete")
            asyncio.run(ensure_database(admin, "unify"))
            dsn = dsn_for_database(admin, "unify")
        r = Run(config, dsn, workdir)
        stack.callback(r.close)
        r.prepare()
        server = r.start_server()

        mode, point = kill_point(config.kill_after)
        log(f"sending {config.deliveries:,} deliveries with {config.senders} senders; kill -9 at {config.kill_after}")
        started = time.time()
        r.start_senders()
        killed_at = up_at = None
        stored_at_kill = 0
        while any(p.poll() is None for p in r.senders):
            time.sleep(0.02)
            if killed_at is not None:
                continue
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} died before the kill:\n{server.log_tail()}")
            due = time.time() - started >= point if mode == "seconds" else r.stored() >= point * config.deliveries
            if due:
                stored_at_kill = r.stored()
                log(f"kill -9 of the server's process group ({stored_at_kill:,} interactions stored)")
                killed_at = time.time()
                r.kill_server(server)
                time.sleep(config.down)
                server = r.start_server()
                up_at = time.time()
                log(f"serving again after an outage of {up_at - killed_at:.2f} s")
        if any(p.wait() for p in r.senders):
            raise RuntimeError("a sender process failed")
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} died:\n{server.log_tail()}")
        results = [SenderResult(**json.loads(path.read_bytes())) for path in r.outputs]
        return check(r, config, results, started, killed_at, up_at, stored_at_kill)
    raise AssertionError("unreachable")


def check(
    r: Run,
    config: Config,
    results: list[SenderResult],
    started: float,
    killed_at: float | None,
    up_at: float | None,
    stored_at_kill: int,
) -> dict[str, Any]:
    """Compare what the senders were told with what the database holds."""
    tag = r.secrets.tag
    outcomes = {index: (outcome, attempts) for res in results for index, outcome, attempts in res.outcomes}
    keys = {index: external_id_of(index, tag) for index in range(config.deliveries)}
    counts = {
        (row["source"], row["external_id"]): row["n"]
        for row in r.db(
            "select source, external_id, count(*) as n from interaction where source = any($1::text[])"
            " group by source, external_id",
            list(CONNECTORS),
        )
    }
    raw = {
        row["key"]: row["n"]
        for row in r.db(
            "select k as key, count(*) as n from raw_event, unnest(event_keys) k"
            " where route = any($1::text[]) group by k",
            list(CONNECTORS),
        )
    }
    raw_statuses = {
        row["status"]: row["n"]
        for row in r.db(
            "select status, count(*) as n from raw_event where route = any($1::text[]) group by status",
            list(CONNECTORS),
        )
    }
    acked = [i for i, (outcome, _) in outcomes.items() if outcome == "a"]
    missing = [i for i in acked if counts.get(keys[i], 0) == 0]
    duplicated = [k for k, n in counts.items() if n > 1]
    foreign = [k for k in counts if k not in set(keys.values())]
    raw_rows = Counter(raw.get(f"{keys[i][0]}/{keys[i][1]}", 0) for i in acked)
    answers: Counter[str] = Counter()
    for res in results:
        answers.update(res.answers)
    # From the moment every sender process had built its requests (process start-up is not load) to the last answer.
    started = max(started, min(res.started_at for res in results))
    finished = max(res.finished_at for res in results)
    sent = sum(res.sent for res in results)
    per_connector = {
        name: {
            "acknowledged": sum(1 for i in acked if connector_of(i) == name),
            "missing": sum(1 for i in missing if connector_of(i) == name),
        }
        for name in CONNECTORS
    }
    return {
        "deliveries": config.deliveries,
        "senders": config.senders,
        "server_workers": SERVER_WORKERS,
        "requests_sent": sent,
        "acknowledged": len(acked),
        "retried": sent - len(outcomes),
        "deliveries_retried": sum(1 for _, attempts in outcomes.values() if attempts > 1),
        "max_attempts": max((attempts for _, attempts in outcomes.values()), default=0),
        "rejected_4xx": sum(1 for outcome, _ in outcomes.values() if outcome == "r"),
        "gave_up": sum(1 for outcome, _ in outcomes.values() if outcome == "g"),
        "unresolved": config.deliveries - len(outcomes),
        "stored": sum(counts.get(k, 0) for k in keys.values()),
        "missing": len(missing),
        "missing_keys": [f"{keys[i][0]}/{keys[i][1]}" for i in missing[:20]],
        "duplicated": len(duplicated),
        "duplicated_keys": [f"{s}/{e}" for s, e in duplicated[:20]],
        "foreign_interactions": len(foreign),
        "raw_rows": {str(n): c for n, c in sorted(raw_rows.items())},
        "raw_statuses": raw_statuses,
        "answers": dict(sorted(answers.items())),
        "per_connector": per_connector,
        "killed": killed_at is not None,
        "kill_after": config.kill_after,
        "killed_after_s": None if killed_at is None else round(killed_at - started, 2),
        "stored_at_kill": stored_at_kill,
        "outage_s": None if killed_at is None or up_at is None else round(up_at - killed_at, 2),
        "duration_s": round(finished - started, 2),
        "throughput_per_s": round(len(acked) / (finished - started), 1) if finished > started else 0.0,
    }


def passed(report: dict[str, Any]) -> bool:
    return (
        report["killed"]
        and report["missing"] == 0
        and report["duplicated"] == 0
        and report["acknowledged"] == report["deliveries"]
    )


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\nchaos run: {report['deliveries']:,} deliveries over {', '.join(CONNECTORS)}; {report['senders']} senders; "
        f"unify serve --workers {report['server_workers']}"
    )
    if report["killed"]:
        print(
            f"kill -9 after {report['killed_after_s']} s ({report['stored_at_kill']:,} stored); "
            f"outage (kill → ready) {report['outage_s']} s"
        )
    else:
        print("the server was NOT killed: the load ended before the kill point")
    print(f"requests sent     {report['requests_sent']:>9,}   answers: {report['answers']}")
    print(f"acknowledged      {report['acknowledged']:>9,}")
    print(
        f"retried           {report['retried']:>9,}   (attempts beyond the first; {report['deliveries_retried']:,} "
        f"deliveries, at most {report['max_attempts']} attempts)"
    )
    if report["rejected_4xx"] or report["gave_up"] or report["unresolved"]:
        print(
            f"NOT acknowledged  {report['rejected_4xx']:>9,} rejected (4xx), {report['gave_up']:,} given up, "
            f"{report['unresolved']:,} unresolved"
        )
    print(f"missing           {report['missing']:>9,}   {' '.join(report['missing_keys'])}")
    print(f"duplicated        {report['duplicated']:>9,}   {' '.join(report['duplicated_keys'])}")
    print(
        f"raw rows          {'':>9}   per acknowledged delivery: {report['raw_rows']}; "
        f"statuses {report['raw_statuses']}"
    )
    print(f"duration          {report['duration_s']:>9} s; throughput {report['throughput_per_s']:,} acknowledged/s")
    print("PASS" if passed(report) else "FAIL")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=20_000, help="deliveries to acknowledge (default 20,000)")
    parser.add_argument(
        "--kill-after",
        default="0.5",
        help="when to kill -9: below 1, a fraction of the deliveries stored; else seconds, e.g. 4 or 4s (default 0.5)",
    )
    parser.add_argument("--down", type=float, default=1.0, help="seconds between the kill and the restart (default 1)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent senders (default 32)")
    parser.add_argument("--client-processes", type=int, default=2, help="sender processes (default 2)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a request is retried (default 10)")
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds a delivery is retried (default 120)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    parser.add_argument("--load-worker", metavar="JOB", help=argparse.SUPPRESS)  # one sender process
    args = parser.parse_args(argv)
    if min(args.deliveries, args.senders, args.client_processes) < 1 or args.down < 0:
        parser.error("--deliveries, --senders and --client-processes must be at least 1, --down at least 0")
    try:
        kill_point(args.kill_after)
    except ValueError:
        parser.error("--kill-after: a fraction below 1 or seconds, e.g. 0.5, 4 or 4s")
    return args


def config_of(args: argparse.Namespace) -> Config:
    return Config(
        deliveries=args.deliveries,
        kill_after=args.kill_after,
        down=args.down,
        senders=args.senders,
        client_processes=args.client_processes,
        timeout=args.timeout,
        give_up=args.give_up,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_worker:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole terminal group: the parent stops us
        job = SenderJob(**json.loads(args.load_worker))
        Path(job.output).write_text(json.dumps(asdict(asyncio.run(send_all(job)))))
        return 0
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")  # XDG_RUNTIME_DIR unset
    from unify.logging import configure_logging

    configure_logging("console", "warning")
    return report_main(lambda: run(config_of(args)), as_json=args.json, show=print_report, ok=passed)


if __name__ == "__main__":
    sys.exit(main())
