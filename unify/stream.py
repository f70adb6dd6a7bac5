"""The live feed behind `GET /v1/stream`: PostgreSQL notices of new and updated interactions, fanned out to clients.

Migration 0011 makes every committed interaction change send `<id> <created|updated>` on the channel
`unify_interaction`. Each server worker runs one `InteractionFeed`: a dedicated connection (not one of the pool's,
which never hold session state) that LISTENs and, while it has subscribers, turns the ids it hears into notices
(`interaction_notice`, in batches, on the same connection), decodes them into `InteractionNotice` and hands each to
every subscriber whose filter matches. With no subscribers, a notice costs the worker nothing but reading it.
A NOTIFY reaches every listening connection, so a client connected to one worker
hears what another worker (or `unify` on another machine) ingested.

Each subscriber has a bounded queue. A client that reads too slowly loses the oldest notices and is told to re-read
its context with a `StreamResync` (reason `overflow`); so is every client when the listening connection was lost
(reason `reconnected`: notices sent while it was down are gone). The feed reconnects by itself, with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import msgspec
import structlog

from schemas import InteractionNotice, StreamResync
from unify.store import load_queries

log = structlog.get_logger("unify.stream")
_Q = load_queries("stream")
_BATCH = 500

CHANNEL = "unify_interaction"
"""The NOTIFY channel of migration 0011."""

StreamItem = InteractionNotice | StreamResync
"""What a subscriber receives."""

_decode_notice = msgspec.json.Decoder(InteractionNotice).decode


@dataclass(frozen=True)
class StreamFilter:
    """Which notices a subscriber wants: those whose customer (root id), one of whose normalized `kind:value`
    identifiers, whose agent or whose queue is among the given ones. Any one field matching is enough.
    `identifier_customers`: the customers (root ids) the given identifiers belong to, so that a stream asked for by
    a phone number also hears of that customer's emails and chats."""

    customer_ids: frozenset[UUID] = frozenset()
    identifiers: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()
    queues: frozenset[str] = frozenset()
    identifier_customers: frozenset[UUID] = frozenset()

    @property
    def empty(self) -> bool:
        """True when nothing is asked for (such a filter matches nothing)."""
        return not (self.customer_ids or self.identifiers or self.agents or self.queues)

    def matches(self, notice: InteractionNotice) -> bool:
        """Whether `notice` is one this filter asks for."""
        return (
            (
                notice.customer_id is not None
                and (notice.customer_id in self.customer_ids or notice.customer_id in self.identifier_customers)
            )
            or (notice.agent is not None and notice.agent in self.agents)
            or (notice.queue is not None and notice.queue in self.queues)
            or (bool(self.identifiers) and not self.identifiers.isdisjoint(notice.identifiers))
        )


class Subscription:
    """One client's share of the feed: its filter (replaceable, e.g. when a merge changes a customer's root) and a
    bounded queue of what matched. Read it with `get`; `None` means the feed was closed."""

    def __init__(self, stream_filter: StreamFilter, max_queued: int) -> None:
        self.filter = stream_filter
        self.max_queued = max(1, max_queued)
        self.dropped = 0
        """Notices dropped for this subscriber since it subscribed (overflow)."""
        self._queue: asyncio.Queue[StreamItem | None] = asyncio.Queue()  # bounded by `offer`, see there
        self._closed = False

    def offer(self, item: StreamItem) -> None:
        """Queue `item`. When `max_queued` items are waiting already, they are dropped (the oldest first: all of
        them, since a resync makes them moot) and replaced by one `StreamResync` counting everything dropped."""
        if self._closed:
            return
        if self._queue.qsize() >= self.max_queued:
            notices, earlier = 0, 0
            while not self._queue.empty():
                old = self._queue.get_nowait()
                if isinstance(old, InteractionNotice):
                    notices += 1
                elif isinstance(old, StreamResync):
                    earlier += old.dropped  # a resync not read yet: its count carries over
            self.dropped += notices
            self._queue.put_nowait(StreamResync(reason="overflow", dropped=notices + earlier))
            log.warning("stream.overflow", dropped=notices, dropped_total=self.dropped, max_queued=self.max_queued)
        self._queue.put_nowait(item)

    def close(self) -> None:
        """End the subscription: a pending or later `get` returns None."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(None)

    async def get(self) -> StreamItem | None:
        """The next item (waiting for one); None once closed. Safe to cancel (e.g. under `asyncio.timeout`)."""
        if self._closed and self._queue.empty():
            return None
        return await self._queue.get()


class InteractionFeed:
    """One LISTEN connection per process, fanning interaction notices out to subscribers.

    `start` returns at once and connects in the background (retrying with backoff while the database is away);
    `wait_listening` tells whether it is listening. `close` stops it and ends every subscription. As an async
    context manager it is started on entry and closed on exit."""

    def __init__(
        self,
        dsn: str,
        *,
        max_queued: int = 256,
        ping_seconds: float = 30.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        end_streams_on_signal: bool = False,
    ) -> None:
        self._dsn = dsn
        self._end_streams_on_signal = end_streams_on_signal
        self._restore_signals: Callable[[], None] | None = None
        self.max_queued = max_queued
        self._ping_seconds = ping_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._subscribers: set[Subscription] = set()
        self._listening = asyncio.Event()
        self._lost = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._conn_lock = asyncio.Lock()  # one operation at a time on the listening connection
        self._pending: list[tuple[str, str]] = []
        self._drainer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._ending = False
        self.reconnects = 0
        """How many times the listening connection was re-established after a loss."""

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are attached now."""
        return len(self._subscribers)

    @property
    def listener_pid(self) -> int | None:
        """The server process id of the listening connection, when connected."""
        conn = self._conn
        return conn.get_server_pid() if conn is not None and not conn.is_closed() else None

    def start(self) -> None:
        """Start listening in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="unify-stream-listener")

    async def __aenter__(self) -> InteractionFeed:
        self.start()
        if self._end_streams_on_signal:
            self._restore_signals = _on_shutdown_signal(self.end_streams)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def wait_listening(self, seconds: float) -> bool:
        """Wait up to `seconds` for the feed to be listening; whether it is."""
        if self._listening.is_set():
            return True
        try:
            await asyncio.wait_for(self._listening.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop listening, close the connection and end every subscription."""
        self._closing = True
        self._lost.set()
        if self._restore_signals is not None:
            self._restore_signals()
            self._restore_signals = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        await self._disconnect()
        for subscription in list(self._subscribers):
            subscription.close()
        self._subscribers.clear()
        log.info("stream.feed_closed")

    def end_streams(self) -> None:
        """End every subscription now and refuse new ones, keeping the connection: the server is shutting down and
        waits for open responses to finish (clients reconnect, to another server or after the restart)."""
        if not self._ending:
            self._ending = True
            log.info("stream.ending_streams", subscribers=len(self._subscribers))
        for subscription in list(self._subscribers):
            subscription.close()
        self._subscribers.clear()

    def subscribe(self, stream_filter: StreamFilter) -> Subscription:
        """Attach a subscriber; call `unsubscribe` when its client goes (or use `subscription`)."""
        subscription = Subscription(stream_filter, self.max_queued)
        if self._closing or self._ending:
            subscription.close()
            return subscription
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Detach a subscriber (idempotent)."""
        self._subscribers.discard(subscription)
        subscription.close()

    @contextlib.asynccontextmanager
    async def subscription(self, stream_filter: StreamFilter) -> AsyncIterator[Subscription]:
        """A subscriber for the duration of the block, removed however the block ends."""
        subscription = self.subscribe(stream_filter)
        try:
            yield subscription
        finally:
            self.unsubscribe(subscription)

    def publish(self, notice: InteractionNotice) -> int:
        """Hand `notice` to every matching subscriber; how many matched."""
        matched = 0
        for subscription in list(self._subscribers):
            if subscription.filter.matches(notice):
                subscription.offer(notice)
                matched += 1
        return matched

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if not self._subscribers:
            return
        interaction, _, change = payload.partition(" ")
        self._pending.append((interaction, change))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain(), name="unify-stream-notices")

    async def _drain(self) -> None:
        """Turn the ids heard into notices, in batches, and publish them in the order heard."""
        while self._pending:
            batch, self._pending = self._pending[:_BATCH], self._pending[_BATCH:]
            conn = self._conn
            if conn is None or conn.is_closed() or not self._subscribers:
                continue
            try:
                async with self._conn_lock:
                    rows = await conn.fetch(_Q["interaction_notices"], [i for i, _ in batch], [c for _, c in batch])
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
                # Lost with the connection: subscribers get a resync when it is back.
                log.warning("stream.notices_unresolved", count=len(batch), error=type(exc).__name__)
                continue
            for row in rows:
                if row["notice"] is None:
                    continue  # deleted since
                try:
                    notice = _decode_notice(row["notice"])
                except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
                    log.warning("stream.notice_undecodable", error=str(exc))
                    continue
                self.publish(notice)

    def _on_termination(self, _conn: object) -> None:
        self._lost.set()

    async def _run(self) -> None:
        failures = 0
        connected_before = False
        while not self._closing:
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                failures += 1
                delay = min(self._backoff_max, self._backoff_initial * 2 ** (failures - 1))
                delay *= 0.5 + random.random() / 2  # jitter: workers do not reconnect in lockstep
                log.warning(
                    "stream.listener_connect_failed",
                    attempt=failures,
                    retry_in_seconds=round(delay, 2),
                    error=type(exc).__name__,
                    detail=str(exc),
                )
                await asyncio.sleep(delay)
                continue
            if connected_before:
                self.reconnects += 1
                log.info(
                    "stream.listener_reconnected",
                    attempts=failures + 1,
                    subscribers=len(self._subscribers),
                    pid=self.listener_pid,
                )
                for subscription in list(self._subscribers):
                    subscription.offer(StreamResync(reason="reconnected"))
            else:
                log.info("stream.listener_started", channel=CHANNEL, pid=self.listener_pid)
            connected_before = True
            failures = 0
            self._listening.set()
            await self._watch()
            self._listening.clear()
            await self._disconnect()
            if not self._closing:
                log.warning("stream.listener_lost", subscribers=len(self._subscribers))

    async def _connect(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            conn.add_termination_listener(self._on_termination)
            await conn.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    async def _watch(self) -> None:
        """Return when the listening connection is lost, or is not answering a ping (a half-open socket)."""
        while not self._closing:
            try:
                await asyncio.wait_for(self._lost.wait(), self._ping_seconds)
                return
            except TimeoutError:
                pass
            conn = self._conn
            if conn is None or conn.is_closed():
                return
            try:
                async with self._conn_lock:
                    await asyncio.wait_for(conn.fetchval("select 1"), min(10.0, self._ping_seconds))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("stream.listener_ping_failed", error=type(exc).__name__, detail=str(exc))
                return

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), 2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            conn.terminate()


def _on_shutdown_signal(callback: Callable[[], None]) -> Callable[[], None] | None:
    """Call `callback` on the running loop when SIGINT or SIGTERM arrives, then whatever handled it already. Only
    signals something handles already are chained (a default action, such as being terminated, is left alone).
    Returns the function that restores the previous handlers; None off the main thread.

    Why: the server (granian) stops gracefully by waiting for open responses, and a stream never ends by itself,
    so a server with an agent desktop connected would never stop. The server's own handler is the event loop's
    (wakeup fd), which a Python-level handler does not replace; this one is chained in front of it."""
    loop = asyncio.get_running_loop()
    previous: dict[int, object] = {}

    def handler(signum: int, frame: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed already
            loop.call_soon_threadsafe(callback)
        earlier = previous[signum]
        assert callable(earlier)
        earlier(signum, frame)

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if callable(signal.getsignal(sig)):
                previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals are not ours to handle
        for sig, earlier in previous.items():
            signal.signal(sig, earlier)  # type: ignore[arg-type]
        return None

    def restore() -> None:
        for sig, earlier in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, earlier)  # type: ignore[arg-type]

    return restore
