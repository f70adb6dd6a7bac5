"""`GET /v1/stream`: server-sent events of new and updated interactions, for an agent desktop's customer card.

The filter is given as query parameters (any one matching is enough): `customer_id` (followed as the root of its
merge group, re-resolved at every heartbeat), `phone` / `email` / `chat` / `account` (normalized exactly as ingest
normalizes them; the customers they belong to are followed too, re-resolved likewise), `agent`, `queue`. Events:
`ready` (the filter as understood), then `interaction` for each notice (SSE `id` = the interaction id, data =
`InteractionNotice`), `resync` when notices were missed, and a comment line every UNIFY_STREAM_HEARTBEAT_SECONDS on
an idle stream. A stream following an identifier is vouched for as the context's lookups are (`verification`, default
`unverified`): below what reveals everything, the notices' other identifiers are masked as the context masks them.
The notices come from PostgreSQL (migration 0011) through the worker's `InteractionFeed` (unify/stream.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar
from uuid import UUID

import asyncpg
import msgspec
import structlog
from litestar import Request, get
from litestar.params import FromQuery
from litestar.response import ServerSentEvent
from litestar.response.sse import ServerSentEventMessage

from schemas import (
    FieldError,
    Identifier,
    IdentifierKind,
    InteractionNotice,
    StreamReady,
    StreamResync,
    Verification,
)
from unify.errors import BadRequest, NotFound, ServiceUnavailable
from unify.http._problems import DATABASE_DOWN
from unify.http.context import Vouched
from unify.identity import normalize_identifier
from unify.store import load_queries
from unify.stream import InteractionFeed, StreamFilter, Subscription

log = structlog.get_logger("unify.stream")
_Q = load_queries("stream")
_FILTER_PARAMETERS = ("customer_id", "phone", "email", "chat", "account", "agent", "queue")
_encode = msgspec.json.Encoder().encode
_LISTENING_WAIT_SECONDS = 5.0
_HEARTBEAT = object()


_T = TypeVar("_T")


def _identifiers(request: Request, given: dict[IdentifierKind, str | None]) -> frozenset[str]:
    options = request.app.state.ingest_options
    found: set[str] = set()
    for kind, value in given.items():
        if value is None:
            continue
        normalized = normalize_identifier(
            Identifier(kind=kind, value=value), options.default_region, options.identity.rules
        )
        if normalized is None:
            raise BadRequest(
                f"the query parameter {kind} is not a usable {kind} identifier (it would never link a customer)",
                errors=[FieldError(field=kind, message="not a usable identifier")],
            )
        found.add(f"{normalized.kind}:{normalized.value}")
    return frozenset(found)


async def _customer_root(request: Request, customer_id: UUID) -> UUID | None:
    async with request.app.state.pool.acquire() as conn:
        return await conn.fetchval(_Q["customer_root"], customer_id)


async def _identifier_roots(request: Request, identifiers: frozenset[str]) -> frozenset[UUID]:
    """The customers (group roots) the `kind:value` identifiers belong to now; shared ones belong to nobody."""
    if not identifiers:
        return frozenset()
    kinds, values = zip(*(i.split(":", 1) for i in sorted(identifiers)), strict=True)
    async with request.app.state.pool.acquire() as conn:
        return frozenset(r["root_id"] for r in await conn.fetch(_Q["identifier_roots"], kinds, values))


@get(
    "/v1/stream",
    opt={"scope": "context:read"},
    tags=["stream"],
    summary="Live notices of new and updated interactions (server-sent events)",
    description=(
        "Give at least one filter; a notice is sent when any of them matches: `customer_id` (the whole merge group "
        "it belongs to), `phone`, `email`, `chat`, `account` (normalized as ingest normalizes; the customer each "
        "belongs to is followed too, on every channel), `agent`, `queue`. "
        "Events: `ready` (the filter, normalized), `interaction` (`id` = interaction id, data = InteractionNotice), "
        "`resync` (notices were missed: re-read the context), and a `: heartbeat` comment every "
        "UNIFY_STREAM_HEARTBEAT_SECONDS. Bulk imports send no notices."
    ),
)
async def stream_interactions(
    request: Request,
    customer_id: FromQuery[UUID | None] = None,
    phone: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    chat: FromQuery[str | None] = None,
    account: FromQuery[str | None] = None,
    agent: FromQuery[str | None] = None,
    queue: FromQuery[str | None] = None,
    verification: Vouched = None,
) -> ServerSentEvent:
    agent = agent.strip() if agent and agent.strip() else None
    queue = queue.strip() if queue and queue.strip() else None
    if customer_id is None and not any((phone, email, chat, account, agent, queue)):
        raise BadRequest(
            f"give at least one of the query parameters {', '.join(_FILTER_PARAMETERS)}",
            errors=[FieldError(field=name, message="one of these is required") for name in _FILTER_PARAMETERS],
        )
    identifiers = _identifiers(request, {"phone": phone, "email": email, "chat": chat, "account": account})
    # as the context: a lookup by an identifier is unverified unless the desktop says otherwise
    vouched: Verification = verification or ("unverified" if identifiers else "authenticated")
    masked = (bool(identifiers) or verification is not None) and not request.app.state.context_policy.trusted(vouched)
    roots: frozenset[UUID] = frozenset()
    customer: tuple[UUID, UUID] | None = None
    if customer_id is not None:
        root = await _customer_root(request, customer_id)
        if root is None:
            raise NotFound(f"no customer with id {customer_id}")
        customer = (customer_id, root)
        roots = frozenset({root, customer_id})  # the id given too: it is the root again if a merge is undone
    feed: InteractionFeed = request.app.state.stream_feed
    if not await feed.wait_listening(_LISTENING_WAIT_SECONDS):
        raise ServiceUnavailable("the live stream is not connected to the database yet; retry shortly")
    stream_filter = StreamFilter(
        customer_ids=roots,
        identifiers=identifiers,
        agents=frozenset({agent}) if agent else frozenset(),
        queues=frozenset({queue}) if queue else frozenset(),
        identifier_customers=await _identifier_roots(request, identifiers),
    )
    heartbeat = float(request.app.state.settings.stream_heartbeat_seconds)
    return ServerSentEvent(
        _events(request, feed, stream_filter, customer, heartbeat, masked),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _masked(notice: InteractionNotice, shown: frozenset[str]) -> InteractionNotice:
    """`notice` with each identifier but those in `shown` reduced to its last two characters, as the context of an
    unverified lookup masks them (migration 0010: '•••' and the value's last two)."""
    identifiers = [
        item if item in shown else f"{item.split(':', 1)[0]}:•••{item.split(':', 1)[1][-2:]}"
        for item in notice.identifiers
    ]
    return msgspec.structs.replace(notice, identifiers=identifiers)


async def _events(
    request: Request,
    feed: InteractionFeed,
    stream_filter: StreamFilter,
    customer: tuple[UUID, UUID] | None,
    heartbeat: float,
    masked: bool = False,
) -> AsyncIterator[ServerSentEventMessage]:
    """The event stream of one client (`customer`: the id asked for and its root now; `masked`: the notices show only
    the filter's own identifiers in full); its subscription is removed however the stream ends (the client going away
    cancels this generator)."""
    delivered = 0
    subscription = feed.subscribe(stream_filter)
    log.info(
        "stream.subscribed",
        customers=len(stream_filter.customer_ids),
        identifiers=len(stream_filter.identifiers),
        agent=bool(stream_filter.agents),
        queue=bool(stream_filter.queues),
        subscribers=feed.subscriber_count,
        worker_pid=os.getpid(),
    )
    try:
        ready = StreamReady(
            customer_ids=sorted(stream_filter.customer_ids),
            identifiers=sorted(stream_filter.identifiers),
            identifier_customer_ids=sorted(stream_filter.identifier_customers),
            agent=next(iter(stream_filter.agents), None),
            queue=next(iter(stream_filter.queues), None),
            heartbeat_seconds=heartbeat,
            masked=masked,
        )
        yield ServerSentEventMessage(event="ready", data=_encode(ready).decode())
        resolve_at = time.monotonic() + heartbeat
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    item = await subscription.get()
            except TimeoutError:
                item = _HEARTBEAT
            if item is None:  # the feed closed: the server is shutting down
                return
            if time.monotonic() >= resolve_at:
                if customer is not None:
                    customer = await _follow_merges(request, subscription, customer)
                if stream_filter.identifiers:
                    await _follow_identifiers(request, subscription)
                resolve_at = time.monotonic() + heartbeat
            if item is _HEARTBEAT:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
            elif isinstance(item, InteractionNotice):
                delivered += 1
                if masked:
                    item = _masked(item, stream_filter.identifiers)
                yield ServerSentEventMessage(
                    event="interaction", id=str(item.interaction_id), data=_encode(item).decode()
                )
            elif isinstance(item, StreamResync):
                yield ServerSentEventMessage(event="resync", data=_encode(item).decode())
    finally:
        feed.unsubscribe(subscription)
        log.info(
            "stream.closed",
            delivered=delivered,
            dropped=subscription.dropped,
            subscribers=feed.subscriber_count,
            worker_pid=os.getpid(),
        )


async def _follow_merges(
    request: Request, subscription: Subscription, customer: tuple[UUID, UUID]
) -> tuple[UUID, UUID]:
    """Re-resolve the root of the customer asked for: after a merge (or its undo) the stream follows the group it
    is in now. Returns (the id asked for, the root followed)."""
    asked, followed = customer
    root = await _read_again(_customer_root(request, asked))
    if root is None or root == followed:
        return customer
    subscription.filter = dataclasses.replace(subscription.filter, customer_ids=frozenset({root, asked}))
    log.info("stream.filter_updated", customer_root=str(root))
    return asked, root


async def _follow_identifiers(request: Request, subscription: Subscription) -> None:
    """Re-resolve the customers the identifiers asked for belong to: a caller seen for the first time since the
    stream opened, a merge, a detach or an identifier marked shared is followed from the next heartbeat."""
    roots = await _read_again(_identifier_roots(request, subscription.filter.identifiers))
    if roots is not None and roots != subscription.filter.identifier_customers:
        subscription.filter = dataclasses.replace(subscription.filter, identifier_customers=roots)
        log.info("stream.filter_updated", identifier_customers=len(roots))


async def _read_again(read: Awaitable[_T]) -> _T | None:
    """What `read` finds now, or None when it cannot be read (the database is away, the customer erased): the
    stream then keeps its filter and tries again at the next heartbeat."""
    try:
        return await read
    except (*DATABASE_DOWN, asyncpg.PostgresError) as exc:
        log.warning("stream.resolve_failed", error=type(exc).__name__)
        return None
