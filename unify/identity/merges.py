"""Changing identity by hand: merging two customers, undoing a merge, detaching an identifier, and deciding merge
suggestions. Each runs in one transaction; merges are records (customer_merge), never deletions, so every one of
these can be reversed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar
from uuid import UUID

import asyncpg
import structlog

from schemas import CustomerMerge, DetachResult, MergeResult, MergeSuggestion, SuggestionStatus
from unify.errors import BadRequest, Conflict, NotFound
from unify.identity.explain import explain_customer, merge_from_row, suggestion_from_row
from unify.store import load_queries

log = structlog.get_logger("unify.identity")
_Q = load_queries("identity")
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 3
T = TypeVar("T")


async def merge_customers(
    pool: asyncpg.Pool,
    survivor_id: UUID,
    merged_id: UUID,
    *,
    actor: str,
    reason: str,
    limits: Mapping[str, int],
    rule: str = "manual",
) -> MergeResult:
    """Merge `merged_id`'s group into `survivor_id`'s. NotFound for an unknown customer; Conflict when they are
    already one customer or a per-kind limit vetoes it (the message names the limit)."""
    async with pool.acquire() as conn:
        merge = await _retrying(lambda: _merge(conn, survivor_id, merged_id, rule, actor, reason, limits))
        log.info("customers_merged", merge_id=str(merge.id), rule=rule)
        return await _result(conn, merge, merge.survivor_id)


async def _merge(
    conn: asyncpg.Connection,
    survivor_id: UUID,
    merged_id: UUID,
    rule: str,
    actor: str,
    reason: str,
    limits: Mapping[str, int],
) -> CustomerMerge:
    async with conn.transaction():
        row = await conn.fetchrow(_Q["merge_customers"], survivor_id, merged_id, rule, actor, reason, dict(limits))
        _refused(row["refused"], survivor_id, merged_id)
        return merge_from_row(await conn.fetchrow(_Q["get_merge"], row["merge_id"]))


def _refused(refused: str | None, survivor_id: UUID, merged_id: UUID) -> None:
    if refused is None:
        return
    if refused == "no such customer":
        raise NotFound(f"no customer with id {survivor_id} or {merged_id}")
    if refused == "already the same customer":
        raise Conflict(f"customers {survivor_id} and {merged_id} are already one customer")
    raise Conflict(f"merge vetoed by a per-kind limit (UNIFY_IDENTIFIER_LIMITS): {refused}")


async def undo_merge(pool: asyncpg.Pool, merge_id: UUID, *, actor: str, reason: str) -> MergeResult:
    """Split a merge: both customers come back as they were, each with what arrived on its side since."""
    async with pool.acquire() as conn:

        async def undo() -> CustomerMerge:
            async with conn.transaction():
                row = await conn.fetchrow(_Q["undo_merge"], merge_id, actor, reason)
                if row["refused"] == "no such merge":
                    raise NotFound(f"no merge with id {merge_id}")
                if row["refused"] is not None:
                    raise Conflict(f"merge {merge_id} is {row['refused']}")
                return merge_from_row(await conn.fetchrow(_Q["get_merge"], merge_id))

        merge = await _retrying(undo)
        log.info("merge_undone", merge_id=str(merge_id))
        return await _result(conn, merge, merge.survivor_id, merge.merged_id)


async def _result(conn: asyncpg.Connection, merge: CustomerMerge, *customer_ids: UUID) -> MergeResult:
    customers = []
    for customer_id in customer_ids:
        identity = await explain_customer(conn, customer_id)
        if identity is not None:
            customers.append(identity)
    return MergeResult(merge=merge, customers=customers)


async def detach_identifier(
    pool: asyncpg.Pool,
    identifier_id: int,
    *,
    actor: str,
    reason: str,
    to_customer_id: UUID | None,
    limits: Mapping[str, int],
) -> DetachResult:
    """Move one identifier out of its customer, into `to_customer_id` or a new customer of its own. Interactions
    follow by themselves: their customer is derived from their identifiers' links."""
    async with pool.acquire() as conn:

        async def detach() -> DetachResult:
            async with conn.transaction():
                row = await conn.fetchrow(_Q["lock_identifier"], identifier_id)
                if row is None:
                    raise NotFound(f"no identifier with id {identifier_id}")
                if row["customer_id"] is None:
                    raise Conflict(f"identifier {identifier_id} is not linked to any customer")
                if to_customer_id is None:
                    target = await conn.fetchval(_Q["new_customer"], None)
                else:
                    target_root = await conn.fetchval(_Q["customer_root"], to_customer_id)
                    if target_root is None:
                        raise BadRequest(f"no customer with id {to_customer_id} to move the identifier to")
                    if target_root == row["root_id"]:
                        raise Conflict(f"identifier {identifier_id} already belongs to customer {target_root}")
                    limit = limits.get(row["kind"])
                    if limit is not None:
                        held = await conn.fetchval(_Q["kind_count_in_group"], target_root, row["kind"])
                        if held >= limit:
                            raise Conflict(
                                f"customer {target_root} already holds {held} {row['kind']} identifier(s), "
                                f"the limit (UNIFY_IDENTIFIER_LIMITS) is {limit}"
                            )
                    target = to_customer_id
                await conn.execute(_Q["move_identifier"], identifier_id, target, actor, reason)
                return DetachResult(identifier_id=identifier_id, from_customer_id=row["root_id"], customer_id=target)

        result = await _retrying(detach)
        log.info("identifier_detached", identifier_id=identifier_id)
        return result


async def list_suggestions(
    conn: asyncpg.Connection,
    *,
    statuses: list[SuggestionStatus] | None,
    kind: str | None,
    before: UUID | None,
    limit: int,
) -> list[MergeSuggestion]:
    """Newest first; `statuses` None: every status."""
    rows = await conn.fetch(_Q["list_suggestions"], statuses, kind, before, limit)
    return [suggestion_from_row(r) for r in rows]


async def decide_suggestion(
    pool: asyncpg.Pool,
    suggestion_id: UUID,
    *,
    accept: bool,
    actor: str,
    reason: str,
    limits: Mapping[str, int],
) -> MergeSuggestion:
    """Accept (merge the two customers, rule `suggestion`) or reject an open suggestion. A conflicting suggestion
    cannot be accepted while the limit still vetoes it (Conflict)."""
    async with pool.acquire() as conn:

        async def decide() -> MergeSuggestion:
            async with conn.transaction():
                row = await conn.fetchrow(_Q["lock_suggestion"], suggestion_id)
                if row is None:
                    raise NotFound(f"no merge suggestion with id {suggestion_id}")
                if row["status"] not in ("pending", "conflict"):
                    raise Conflict(f"suggestion {suggestion_id} was already decided: {row['status']}")
                merge_id = None
                if accept:
                    if row["root_a"] == row["root_b"]:
                        raise Conflict(f"the customers of suggestion {suggestion_id} are already one customer")
                    survivor, merged = sorted((row["root_a"], row["root_b"]))
                    merged_row = await conn.fetchrow(
                        _Q["merge_customers"], survivor, merged, "suggestion", actor, reason, dict(limits)
                    )
                    _refused(merged_row["refused"], survivor, merged)
                    merge_id = merged_row["merge_id"]
                status = "accepted" if accept else "rejected"
                await conn.execute(_Q["decide_suggestion"], suggestion_id, status, actor, reason, merge_id)
                return suggestion_from_row(await conn.fetchrow(_Q["get_suggestion"], suggestion_id))

        suggestion = await _retrying(decide)
        log.info("suggestion_decided", suggestion_id=str(suggestion_id), status=suggestion.status)
        return suggestion


async def _retrying(work: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return await work()
        except _RETRYABLE:
            if attempt == _ATTEMPTS:
                raise
            log.warning("identity_retry", attempt=attempt)
    raise AssertionError("unreachable")
