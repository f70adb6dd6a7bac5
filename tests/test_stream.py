"""`GET /v1/stream` against a real `unify serve` (two workers) and a real PostgreSQL; `InteractionFeed` in-process.

One server, with its own database, serves the HTTP tests of this module (starting one per test would dominate the
run time); each test uses its own phone numbers, agents and queues so that the tests do not see each other's
notices. Server output goes to a file so that tests can read the `stream.*` log lines."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from schemas import InteractionNotice, StreamResync
from tests.conftest import scratch_database
from tests.events import native_event
from tests.raw import TEST_KEYRING
from tests.server import unify_serve
from unify.auth import create_key
from unify.importer import ImportSource, import_file
from unify.privacy.setup import ingest_options
from unify.settings import Settings
from unify.store import connect
from unify.stream import InteractionFeed, StreamFilter, Subscription

HEARTBEAT = 0.3


# --------------------------------------------------------------------------------------------------- the server


@dataclass
class Server:
    base: str
    log_path: Path
    key: str  # ingest + context:read
    ingest_only_key: str
    admin_key: str
    database_url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    pass
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.log_lines() if line.get("event") == name]


async def _make_keys(dsn: str) -> tuple[str, str, str]:
    conn = await connect(dsn)
    try:
        key, _ = await create_key(conn, "stream-tests", ["ingest", "context:read"])
        ingest_only, _ = await create_key(conn, "stream-tests-ingest", ["ingest"])
        admin, _ = await create_key(conn, "stream-tests-admin", ["admin"])
        return key, ingest_only, admin
    finally:
        await conn.close()


@contextmanager
def serving(dsn: str, log_path: Path, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`unify serve` on `dsn` (output to `log_path`) until the block ends; then SIGINT, as an operator would."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "UNIFY_DATABASE_URL")}
    env.update(
        DATABASE_URL=dsn,
        UNIFY_LOG_FORMAT="json",
        UNIFY_RAW_KEYS=TEST_KEYRING.to_setting(),
        UNIFY_WORKERS=str(workers),
        UNIFY_STREAM_HEARTBEAT_SECONDS=str(HEARTBEAT),
        UNIFY_DB_POOL_MIN="1",
        UNIFY_PURGE_INTERVAL_SECONDS="0",
    )
    with unify_serve(env, log_path) as (base, process):
        yield base, process


@pytest.fixture(scope="module")
def server(pg_admin_dsn: str, template_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server with two workers and its own database for the HTTP tests of this module."""
    with scratch_database(pg_admin_dsn) as dsn:
        key, ingest_only, admin = asyncio.run(_make_keys(dsn))
        log_path = tmp_path_factory.mktemp("stream-server") / "server.log"
        with serving(dsn, log_path, workers=2) as (base, _):
            yield Server(base, log_path, key, ingest_only, admin, dsn)


# --------------------------------------------------------------------------------------------------- SSE client


@dataclass
class Sse:
    event: str | None
    id: str | None
    data: str
    comments: list[str]
    at: float  # time.monotonic() when it was read

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class EventStream:
    """A GET /v1/stream being read in the background; events (and comment-only blocks) land in `received`."""

    response: httpx.Response
    received: asyncio.Queue[Sse] = field(default_factory=asyncio.Queue)
    ready: dict[str, Any] = field(default_factory=dict)

    async def read(self) -> None:
        event: str | None = None
        event_id: str | None = None
        data: list[str] = []
        comments: list[str] = []
        async for line in self.response.aiter_lines():
            if line == "":
                if event is not None or data or comments:
                    await self.received.put(Sse(event, event_id, "\n".join(data), comments, time.monotonic()))
                event, event_id, data, comments = None, None, [], []
            elif line.startswith(":"):
                comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event = value
                elif name == "id":
                    event_id = value
                elif name == "data":
                    data.append(value)

    async def next(self, event: str | None = "interaction", within: float = 5.0) -> Sse:
        """The next message of kind `event` (None: a comment-only message), skipping heartbeats and others."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event!r} event within {within} s")
            message = await asyncio.wait_for(self.received.get(), remaining)
            if message.event == event:
                return message

    async def nothing_more(self, seconds: float) -> list[Sse]:
        """Interaction events that arrive within `seconds` (expected: none)."""
        await asyncio.sleep(seconds)
        found = []
        while not self.received.empty():
            message = self.received.get_nowait()
            if message.event == "interaction":
                found.append(message)
        return found


@asynccontextmanager
async def stream(server: Server, **params: str) -> AsyncIterator[EventStream]:
    """An open stream with `params`, after its `ready` event."""
    async with (
        httpx.AsyncClient(base_url=server.base, timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", "/v1/stream", params=params, headers=server.auth) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        reader = EventStream(response)
        task = asyncio.create_task(reader.read())
        try:
            ready = await reader.next("ready")
            reader.ready = ready.json()
            yield reader
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def ingest(server: Server, event: dict[str, Any]) -> dict[str, Any]:
    """POST one event on a fresh connection (so that the two workers share the requests)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        response = await client.post("/v1/interactions", json=event, headers=server.auth)
    assert response.status_code in (200, 201), response.text
    return response.json()


def phone_event(external_id: str, phone: str, **extra: Any) -> dict[str, Any]:
    return native_event(
        external_id,
        customer={"identifiers": [{"kind": "phone", "value": phone, "verification": "carrier_attested"}]},
        **extra,
    )


# --------------------------------------------------------------------------------------------------- HTTP tests


async def test_a_phone_variant_subscriber_gets_created_then_updated_within_a_second(server: Server) -> None:
    async with stream(server, phone="(415) 555-0100") as events:
        assert events.ready["identifiers"] == ["phone:+14155550100"]
        assert events.response.headers["cache-control"] == "no-cache"
        assert events.response.headers["x-accel-buffering"] == "no"
        assert events.response.headers["content-type"].startswith("text/event-stream")

        sent = time.monotonic()
        created = await ingest(server, phone_event("stream-a-1", "+14155550100", revision=1, status="ringing"))
        message = await events.next()
        assert message.at - sent < 1.0, f"notice took {message.at - sent:.3f} s"
        notice = msgspec.json.decode(message.data, type=InteractionNotice)
        assert message.id == created["interaction_id"] == str(notice.interaction_id)
        assert notice.change == "created" and notice.status == "ringing" and notice.revision == 1
        assert str(notice.customer_id) == created["customer_id"] and notice.customer_id is not None
        assert "phone:+14155550100" in notice.identifiers and not notice.identifiers_truncated
        assert (notice.channel, notice.direction, notice.agent, notice.queue) == (
            "voice",
            "inbound",
            "agent.kim",
            "billing",
        )

        sent = time.monotonic()
        await ingest(server, phone_event("stream-a-1", "+1 415 555 0100", revision=2, status="completed"))
        message = await events.next()
        assert message.at - sent < 1.0
        update = message.json()
        assert update["change"] == "updated" and update["status"] == "completed" and update["revision"] == 2
        assert update["interaction_id"] == created["interaction_id"]
        assert update["customer_id"] == created["customer_id"]

        # A duplicate changes nothing and sends nothing.
        await ingest(server, phone_event("stream-a-1", "+14155550100", revision=2, status="completed"))
        assert await events.nothing_more(0.5) == []


async def test_b_notices_cross_workers(server: Server) -> None:
    """Streams held by both workers each get every notice, whichever worker ingested it."""
    async with AsyncExitStack() as stack:
        streams: list[EventStream] = []
        pids: set[int] = set()
        for _ in range(12):  # until both workers hold a stream (the kernel spreads connections between them)
            before = len(server.events("stream.subscribed"))
            streams.append(await stack.enter_async_context(stream(server, queue="stream-b")))
            subscribed = await _wait_for_log(server, "stream.subscribed", before + 1)
            pids.add(subscribed[-1]["worker_pid"])
            if len(pids) == 2 and len(streams) >= 3:
                break
        assert len(pids) == 2, "every stream landed on one worker"

        sent = []
        for n in range(8):
            result = await ingest(server, phone_event(f"stream-b-{n}", f"+1415555{n + 200:04d}", queue="stream-b"))
            sent.append(result["interaction_id"])
        for events in streams:
            got = [(await events.next(within=5)).id for _ in sent]
            assert sorted(got) == sorted(sent)


async def test_c_filters_select_by_customer_agent_and_queue(server: Server) -> None:
    ada = await ingest(server, phone_event("stream-c-ada-0", "+14155550300", agent="agent.c1", queue="stream-c1"))
    bob = await ingest(server, phone_event("stream-c-bob-0", "+14155550301", agent="agent.c2", queue="stream-c2"))
    assert ada["customer_id"] != bob["customer_id"]
    async with (
        stream(server, customer_id=ada["customer_id"]) as by_customer,
        stream(server, agent="agent.c1") as by_agent,
        stream(server, queue="stream-c2") as by_queue,
    ):
        assert by_customer.ready["customer_ids"] == [ada["customer_id"]]
        bob_1 = await ingest(server, phone_event("stream-c-bob-1", "+14155550301", agent="agent.c2", queue="stream-c2"))
        ada_1 = await ingest(server, phone_event("stream-c-ada-1", "+14155550300", agent="agent.c1", queue="stream-c1"))

        assert (await by_customer.next()).id == ada_1["interaction_id"]  # not bob's, sent first
        assert (await by_agent.next()).id == ada_1["interaction_id"]
        assert (await by_queue.next()).id == bob_1["interaction_id"]
        for events in (by_customer, by_agent, by_queue):
            assert await events.nothing_more(0.3) == []

    # Several filters: any one matching is enough.
    async with stream(server, agent="agent.c1", queue="stream-c2") as either:
        got_bob = await ingest(
            server, phone_event("stream-c-bob-2", "+14155550301", agent="agent.c2", queue="stream-c2")
        )
        got_ada = await ingest(
            server, phone_event("stream-c-ada-2", "+14155550300", agent="agent.c1", queue="stream-c1")
        )
        assert {(await either.next()).id, (await either.next()).id} == {
            got_bob["interaction_id"],
            got_ada["interaction_id"],
        }


async def test_c_customer_stream_follows_a_merge(server: Server) -> None:
    ada = await ingest(server, phone_event("stream-m-ada", "+14155550310"))
    bob = await ingest(server, phone_event("stream-m-bob", "+14155550311"))
    async with stream(server, customer_id=bob["customer_id"]) as events:
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
            merged = await client.post(
                f"/v1/customers/{ada['customer_id']}/merge",
                json={"customer_id": bob["customer_id"], "reason": "same person"},
                headers={"Authorization": f"Bearer {server.admin_key}"},
            )
        assert merged.status_code == 200, merged.text
        await asyncio.sleep(HEARTBEAT * 3)  # the stream re-resolves bob's root at its heartbeat
        later = await ingest(server, phone_event("stream-m-ada-2", "+14155550310"))
        message = await events.next()
        assert message.id == later["interaction_id"] and message.json()["customer_id"] == ada["customer_id"]


def person_event(external_id: str, *identifiers: tuple[str, str, str], channel: str = "voice") -> dict[str, Any]:
    """A native event carrying (kind, value, verification) identifiers."""
    return native_event(
        external_id,
        channel=channel,
        customer={"identifiers": [{"kind": k, "value": v, "verification": w} for k, v, w in identifiers]},
        details={"type": channel},
    )


async def test_c_an_identifier_stream_follows_its_customer_on_every_channel(server: Server) -> None:
    # Dora is known by phone and email: a stream asked for by her phone number hears of her emails too.
    phone, email = ("phone", "+14155550320", "carrier_attested"), ("email", "dora@example.com", "signed")
    dora = await ingest(server, person_event("stream-i-0", phone, email))
    async with stream(server, phone="+1 415 555 0320") as events:
        assert events.ready["identifier_customer_ids"] == [dora["customer_id"]]
        emailed = await ingest(server, person_event("stream-i-1", email, channel="email"))
        message = await events.next()
        assert message.id == emailed["interaction_id"] and "phone:+14155550320" not in message.json()["identifiers"]
        # followed by an unverified number (the default): her email is masked, as the context masks it
        assert events.ready["masked"] is True and message.json()["identifiers"] == ["email:•••om"]
        await ingest(server, person_event("stream-i-1b", phone, email))
        assert (await events.next()).json()["identifiers"] == ["email:•••om", "phone:+14155550320"]
    async with stream(server, phone="+1 415 555 0320", verification="authenticated") as events:
        assert events.ready["masked"] is False
        again = await ingest(server, person_event("stream-i-1c", email, channel="email"))
        message = await events.next()
        assert message.id == again["interaction_id"] and message.json()["identifiers"] == ["email:dora@example.com"]
    async with stream(server, customer_id=dora["customer_id"]) as events:  # by customer id: as the context, in full
        assert events.ready["masked"] is False
    async with stream(server, customer_id=dora["customer_id"], verification="unverified") as events:
        assert events.ready["masked"] is True  # unless the desktop says the caller is unverified

    # A number nobody has yet: its first call is sent (it carries the number); once the stream has re-resolved it
    # at a heartbeat, the new customer's email is sent too.
    async with stream(server, phone="+1 415 555 0321") as events:
        assert events.ready["identifier_customer_ids"] == []
        first = await ingest(server, phone_event("stream-i-2", "+14155550321"))
        assert (await events.next()).id == first["interaction_id"]
        eve_phone, eve_email = ("phone", "+14155550321", "authenticated"), ("email", "eve@example.com", "authenticated")
        await ingest(server, person_event("stream-i-3", eve_phone, eve_email))
        await events.next()
        await asyncio.sleep(HEARTBEAT * 3)
        later = await ingest(server, person_event("stream-i-4", eve_email, channel="email"))
        assert (await events.next()).id == later["interaction_id"]


async def test_d_heartbeat_comments_on_an_idle_stream(server: Server) -> None:
    async with stream(server, agent="agent.d-nobody") as events:
        started = time.monotonic()
        beat = await events.next(None, within=3)
        assert beat.comments == ["heartbeat"] and beat.at - started < HEARTBEAT * 3
        await events.next(None, within=3)


async def test_e_errors(server: Server) -> None:
    key = server.auth
    async with httpx.AsyncClient(base_url=server.base, timeout=10) as client:
        none = await client.get("/v1/stream", headers=key)
        assert none.status_code == 400 and none.headers["content-type"].startswith("application/problem+json")
        assert "customer_id" in none.json()["detail"] and "phone" in none.json()["detail"]
        assert {e["field"] for e in none.json()["errors"]} >= {"customer_id", "phone", "agent", "queue"}

        junk = await client.get("/v1/stream", params={"phone": "anonymous"}, headers=key)
        assert junk.status_code == 400 and "phone" in junk.json()["detail"]
        assert junk.json()["errors"][0]["field"] == "phone"

        bad_email = await client.get("/v1/stream", params={"email": "noreply@example.com"}, headers=key)
        assert bad_email.status_code == 400 and "email" in bad_email.json()["detail"]
        for kind, value in (("email", "a\x00b@example.com"), ("account", "A\x00"), ("chat", "web:\x00")):
            nul = await client.get("/v1/stream", params={kind: value}, headers=key)  # a NUL: no one's identifier
            assert nul.status_code == 400 and nul.json()["errors"][0]["field"] == kind, nul.text

        bad_uuid = await client.get("/v1/stream", params={"customer_id": "nope"}, headers=key)
        assert bad_uuid.status_code == 400 and bad_uuid.json()["errors"][0]["field"] == "customer_id"

        unknown = await client.get("/v1/stream", params={"customer_id": str(uuid.uuid4())}, headers=key)
        assert unknown.status_code == 404 and unknown.json()["status"] == 404

        no_key = await client.get("/v1/stream", params={"phone": "+14155550100"})
        assert no_key.status_code == 401

        ingest_only = {"Authorization": f"Bearer {server.ingest_only_key}"}
        forbidden = await client.get("/v1/stream", params={"phone": "+14155550100"}, headers=ingest_only)
        assert forbidden.status_code == 403


async def test_f_a_client_that_goes_away_is_unsubscribed(server: Server) -> None:
    closed_before = len(server.events("stream.closed"))
    async with stream(server, agent="agent.f") as events:
        subscribed = (await _wait_for_log(server, "stream.subscribed", 1))[-1]
        assert subscribed["subscribers"] >= 1
        await events.next(None, within=3)  # a heartbeat: the stream is live
    closed = await _wait_for_log(server, "stream.closed", closed_before + 1)
    mine = [line for line in closed[closed_before:] if line["worker_pid"] == subscribed["worker_pid"]]
    assert mine and mine[-1]["subscribers"] == 0


async def test_an_open_stream_does_not_hold_up_shutdown(database_url: str, tmp_path: Path) -> None:
    """The server stops gracefully by waiting for open responses; a stream ends when it is told to stop."""
    key, _, _ = await _make_keys(database_url)
    with serving(database_url, tmp_path / "server.log", workers=1) as (base, process):
        server = Server(base, tmp_path / "server.log", key, "", "", database_url)
        async with stream(server, agent="agent.shutdown") as events:
            stopping = time.monotonic()
            process.send_signal(signal.SIGINT)
            await asyncio.to_thread(process.wait, 15)
            assert time.monotonic() - stopping < 10
            assert process.returncode == 0
            with pytest.raises(TimeoutError):
                await events.next(within=0.2)
        assert server.events("stream.ending_streams") and server.events("stream.closed")


# --------------------------------------------------------------------------------------------------- in-process


@pytest.fixture
async def feed(database_url: str) -> AsyncIterator[InteractionFeed]:
    async with InteractionFeed(database_url, max_queued=16, backoff_initial=0.05) as feed:
        assert await feed.wait_listening(10)
        yield feed


async def _insert(conn: asyncpg.Connection, external_id: str, agent: str, queue: str | None = None) -> str:
    """Write an interaction directly (the trigger of migration 0011 does not care who writes)."""
    interaction_id = await conn.fetchval(
        """insert into interaction (source, external_id, channel, direction, status, occurred_at, event, agent, queue)
           values ('native', $1, 'voice', 'inbound', 'completed', now(), '{}', $2, $3) returning id""",
        external_id,
        agent,
        queue,
    )
    return str(interaction_id)


async def _next(subscription: Subscription, within: float = 5.0) -> InteractionNotice | StreamResync | None:
    async with asyncio.timeout(within):
        return await subscription.get()


async def test_g_feed_recovers_after_its_connection_is_terminated(
    feed: InteractionFeed, db: asyncpg.Connection
) -> None:
    async with feed.subscription(StreamFilter(agents=frozenset({"agent.g"}))) as subscription:
        first = await _insert(db, "feed-g-1", "agent.g")
        notice = await _next(subscription)
        assert isinstance(notice, InteractionNotice) and str(notice.interaction_id) == first

        pid = feed.listener_pid
        assert pid is not None
        assert await db.fetchval("select pg_terminate_backend($1)", pid)
        resync = await _next(subscription)  # notices sent while it was away are lost: re-read
        assert isinstance(resync, StreamResync) and resync.reason == "reconnected"
        assert feed.reconnects == 1 and feed.listener_pid not in (None, pid)

        later = await _insert(db, "feed-g-2", "agent.g")
        notice = await _next(subscription)
        assert isinstance(notice, InteractionNotice) and str(notice.interaction_id) == later
    assert feed.subscriber_count == 0


async def test_f_feed_subscribers_are_counted_and_removed(feed: InteractionFeed) -> None:
    assert feed.subscriber_count == 0
    async with feed.subscription(StreamFilter(agents=frozenset({"x"}))):
        async with feed.subscription(StreamFilter(queues=frozenset({"y"}))):
            assert feed.subscriber_count == 2
        assert feed.subscriber_count == 1
    assert feed.subscriber_count == 0


async def test_h_bulk_import_sends_no_notices(
    feed: InteractionFeed, pool: asyncpg.Pool, db: asyncpg.Connection, settings: Settings
) -> None:
    async with feed.subscription(StreamFilter(agents=frozenset({"agent.h"}))) as subscription:
        lines = [
            phone_event(f"import-h-{n}", f"+1415555{n + 400:04d}", agent="agent.h", revision=r)
            for n in range(5)
            for r in (1, 2)
        ]
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        report = await import_file(
            pool, ImportSource.from_bytes("h.jsonl", data), fmt="jsonl", options=ingest_options(settings), chunk_size=4
        )
        assert report.imported == 5 and report.chunks >= 3
        # Ordinary writes still notify; the first notice to arrive is this one, not an imported row.
        sentinel = await _insert(db, "feed-h-sentinel", "agent.h")
        notice = await _next(subscription)
        assert isinstance(notice, InteractionNotice) and str(notice.interaction_id) == sentinel
        with pytest.raises(TimeoutError):
            await _next(subscription, within=0.3)


async def test_notice_payload_caps_identifiers_and_long_names(database_url: str, db: asyncpg.Connection) -> None:
    payloads: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener("unify_interaction", lambda *args: payloads.put_nowait(args[-1]))
        async with db.transaction():
            interaction = await _insert(db, "feed-cap-1", "agent.cap")
            ids = await db.fetch(
                """insert into identifier (kind, value, first_seen, last_seen)
                   select 'email', 'person' || n || '@example.com', now(), now() from generate_series(1, 60) n
                   returning id"""
            )
            await db.executemany(
                "insert into interaction_identifier (interaction_id, identifier_id, verification) "
                "values ($1::uuid, $2, 'unverified')",
                [(interaction, row["id"]) for row in ids],
            )
        async with asyncio.timeout(5):
            heard = await payloads.get()
        assert heard == f"{interaction} created"  # the notice itself is built by the listening server
        notice = msgspec.json.decode(
            await db.fetchval("select interaction_notice($1::uuid, 'created')", interaction), type=InteractionNotice
        )
        assert str(notice.interaction_id) == interaction and notice.change == "created"
        assert len(notice.identifiers) == 50 and notice.identifiers_truncated
        assert notice.customer_id is None  # never linked

        # A queue name too long for a notice: the write commits, the notice goes without agent, queue, identifiers.
        long_one = await _insert(db, "feed-cap-2", "agent.long", queue="q" * 7990)
        async with asyncio.timeout(5):
            assert await payloads.get() == f"{long_one} created"
        payload = await db.fetchval("select interaction_notice($1::uuid, 'created')", long_one)
        assert len(payload.encode()) < 8000
        notice = msgspec.json.decode(payload, type=InteractionNotice)
        assert str(notice.interaction_id) == long_one
        assert (notice.agent, notice.queue, notice.identifiers, notice.identifiers_truncated) == (None, None, [], True)
    finally:
        await listener.close()


def test_subscription_overflow_drops_oldest_and_asks_for_resync() -> None:
    def notice(n: int) -> InteractionNotice:
        return msgspec.convert(
            {
                "interaction_id": str(uuid.UUID(int=n)),
                "customer_id": None,
                "change": "created",
                "channel": "sms",
                "direction": "inbound",
                "status": "received",
                "occurred_at": "2026-11-02T14:30:00Z",
            },
            InteractionNotice,
        )

    async def scenario() -> list[Any]:
        subscription = Subscription(StreamFilter(agents=frozenset({"a"})), max_queued=2)
        for n in range(1, 6):
            subscription.offer(notice(n))
        subscription.close()
        got = []
        while (item := await subscription.get()) is not None:
            got.append(item)
        assert subscription.dropped == 4  # n1 to n4: only the newest survives a queue of two
        return got

    got = asyncio.run(scenario())
    assert got == [StreamResync(reason="overflow", dropped=4), notice(5)]


# --------------------------------------------------------------------------------------------------- helpers


async def _wait_for_log(server: Server, name: str, count: int, within: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        found = server.events(name)
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"fewer than {count} {name} lines in the server log"
        await asyncio.sleep(0.05)
