"""Agent context: who is on the line and everything that happened before, in one statement.

PostgreSQL assembles the whole answer as JSON (queries/context.sql, in the shape of `schemas.Context`) and writes
the access-log row in the same statement, so a lookup costs one round trip and the bytes go to the client as they
come. The journey definitions it uses (contact, repeat, journey, customer wait, failed contact) live in migration
0010 and are shared with the consistency audit. Promises made to customers are recorded and updated here too."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from schemas import (
    ContextAccess,
    FieldError,
    Identifier,
    IdentifierKind,
    NewPromise,
    Promise,
    PromiseUpdate,
    Verification,
)
from unify.errors import BadRequest, NotFound
from unify.identity import IdentityPolicy, normalize_identifier
from unify.settings import Settings
from unify.store import load_queries

_Q = load_queries("context")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMELINE = 200


def _split(values: str) -> list[str]:
    return [v.strip().lower() for v in values.split(",") if v.strip()]


@dataclass(frozen=True)
class ContextPolicy:
    """The settings a context read depends on: the repeat window, what an unverified lookup may see, and the
    thresholds of the guidance flags."""

    repeat_window_seconds: float = 7 * 86400.0
    unverified_view: str = "metadata"
    guidance: Mapping[str, object] = field(default_factory=dict)

    def trusted(self, verification: Verification) -> bool:
        """Whether a lookup vouched for at `verification` sees bodies and every identifier."""
        return verification != "unverified" or self.unverified_view == "full"


def context_policy(settings: Settings) -> ContextPolicy:
    guidance = {
        "failed": settings.suppress_offers_failed_contacts,
        "complaints": _split(settings.complaint_reasons),
        "vip_tiers": _split(settings.vip_tiers),
        "at_risk_repeats": settings.at_risk_repeats,
        "at_risk_wait_seconds": settings.at_risk_wait_minutes * 60,
    }
    return ContextPolicy(
        repeat_window_seconds=settings.repeat_window_days * 86400,
        unverified_view=settings.context_unverified_view,
        guidance=guidance,
    )


@dataclass(frozen=True)
class ContextRead:
    """The outcome of a context read: `found`, `ambiguous`, `unknown`, or `missing` (no customer with the id asked
    for), and the Context document as JSON bytes."""

    status: str
    document: bytes


async def read_context(
    conn: asyncpg.Connection,
    *,
    kind: IdentifierKind | None,
    value: str | None,
    customer_id: UUID | None,
    verification: Verification,
    limit: int,
    api_key_id: UUID | None,
    policy: ContextPolicy,
    identity: IdentityPolicy,
    default_region: str,
    current: UUID | None = None,
) -> ContextRead:
    """The context for an identifier (`kind`, raw `value`, normalized here exactly as ingest normalizes it) or for a
    customer id. Junk values (an anonymous caller) answer `unknown`, as a never-seen identifier does. `current`: the
    interaction in front of the agent, when the desktop knows it (the repeat figures count the contacts before it)."""
    normalized: str | None = None
    if customer_id is None:
        if kind is None or value is None:
            raise BadRequest("look up by one of phone, email, chat, account or customer_id")
        found = normalize_identifier(Identifier(kind=kind, value=value), default_region, identity.rules)
        normalized = found.value if found is not None else None
    row = await conn.fetchrow(
        _Q["read_context"],
        kind,
        normalized,
        customer_id,
        policy.trusted(verification),
        policy.repeat_window_seconds,
        limit,
        api_key_id,
        verification,
        policy.guidance,
        kind or "customer_id",
        current,
    )
    return ContextRead(status=row["status"], document=row["document"].encode())


@dataclass(frozen=True)
class Cursor:
    """A position in a customer's timeline (`next_cursor`): the oldest entry shown, and whether the answer it came
    from was masked (the pages after a masked answer are masked too)."""

    occurred_at: datetime
    interaction_id: UUID
    masked: bool


def decode_cursor(cursor: str) -> Cursor:
    """The position a `next_cursor` stands for; 400 naming `cursor` when it is not one."""
    parts = cursor.split("~")
    try:
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "masked"):
            raise ValueError(cursor)
        if not re.fullmatch(r"-?[0-9]{1,20}", parts[0]):  # int() would also take `1_000`, spaces, other digits
            raise ValueError(cursor)
        return Cursor(_EPOCH + timedelta(microseconds=int(parts[0])), UUID(parts[1]), masked=len(parts) == 3)
    except (ValueError, OverflowError):
        raise BadRequest("`cursor` is not a cursor this service returned (use `next_cursor` as it is)") from None


@dataclass(frozen=True)
class TimelinePage:
    customer_id: UUID
    entries: bytes
    next_cursor: str | None


async def read_timeline(
    conn: asyncpg.Connection,
    customer_id: UUID,
    *,
    cursor: str | None,
    limit: int,
    api_key_id: UUID | None,
    verification: Verification,
    policy: ContextPolicy,
) -> TimelinePage:
    """A page of the customer's history, newest first, older than `cursor` when given. Bodies are masked when the
    desktop vouches only `unverified` (as in the context) or the cursor came from a masked answer."""
    position = decode_cursor(cursor) if cursor else None
    row = await conn.fetchrow(
        _Q["read_timeline"],
        customer_id,
        policy.repeat_window_seconds,
        position.occurred_at if position else None,
        position.interaction_id if position else None,
        limit,
        api_key_id,
        verification,
        policy.trusted(verification) and not (position and position.masked),
    )
    if row is None:
        raise NotFound(f"no customer with id {customer_id}")
    return TimelinePage(customer_id=row["root"], entries=row["entries"].encode(), next_cursor=row["next_cursor"])


def _promise(row: Mapping[str, Any]) -> Promise:
    return Promise(
        id=row["id"],
        customer_id=row["customer_id"],
        text=row["text"],
        due_at=row["due_at"],
        channel=row["channel"],
        agent=row["agent"],
        interaction_id=row["interaction_id"],
        status=row["status"],
        overdue=row["overdue"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
        resolved_by=row["resolved_by"],
        note=row["note"],
    )


async def create_promise(conn: asyncpg.Connection, customer_id: UUID, new: NewPromise) -> Promise:
    """Record a promise made to the customer (against the root of their group)."""
    row = await conn.fetchrow(
        _Q["create_promise"], customer_id, new.text, new.due_at, new.channel, new.agent, new.interaction_id
    )
    if row is None:
        if not await conn.fetchval(_Q["customer_exists"], customer_id):
            raise NotFound(f"no customer with id {customer_id}")
        raise BadRequest(
            f"interaction_id: no interaction with id {new.interaction_id}",
            errors=[FieldError(field="interaction_id", message="no such interaction")],
        )
    return _promise(row)


async def update_promise(
    conn: asyncpg.Connection, customer_id: UUID, promise_id: UUID, update: PromiseUpdate, actor: str
) -> Promise:
    """Mark a promise of the customer's group kept, broken or open again."""
    row = await conn.fetchrow(_Q["update_promise"], customer_id, promise_id, update.status, update.note, actor)
    if row is None:
        raise NotFound(f"no promise {promise_id} for customer {customer_id}")
    return _promise(row)


async def list_promises(conn: asyncpg.Connection, customer_id: UUID) -> list[Promise]:
    rows = await conn.fetch(_Q["list_promises"], customer_id)
    if not rows and not await conn.fetchval(_Q["customer_exists"], customer_id):
        raise NotFound(f"no customer with id {customer_id}")
    return [_promise(r) for r in rows]


async def list_context_access(
    conn: asyncpg.Connection,
    *,
    customer_id: UUID | None,
    api_key_id: UUID | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[ContextAccess]:
    """The access log, newest first, filtered by customer group, key and time (a statement for each way in: by
    customer, by key, or neither)."""
    query = (
        "list_context_access_of_customer"
        if customer_id is not None
        else "list_context_access_of_key"
        if api_key_id is not None
        else "list_context_access"
    )
    rows = await conn.fetch(_Q[query], customer_id, api_key_id, since, until, limit)
    return [
        ContextAccess(
            id=r["id"],
            read_at=r["read_at"],
            api_key_id=r["api_key_id"],
            route=r["route"],
            customer_id=r["customer_id"],
            identifier_kind=r["identifier_kind"],
            identifier_value=r["identifier_value"],
            match_status=r["match_status"],
            verification=r["verification"],
            masked=r["masked"],
        )
        for r in rows
    ]
