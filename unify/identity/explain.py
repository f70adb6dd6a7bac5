"""Reading identity: who a customer is made of and why, and who an identifier belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from schemas import (
    CustomerIdentity,
    CustomerMerge,
    ExplainedIdentifier,
    Identifier,
    IdentifierKind,
    IdentifierLink,
    IdentityLookup,
    MergeSuggestion,
)
from unify.identity._normalize import normalize_identifier
from unify.identity._policy import IdentityPolicy
from unify.store import load_queries

_Q = load_queries("identity")


async def customer_root(conn: asyncpg.Connection, customer_id: UUID) -> UUID | None:
    """The customer standing for `customer_id`'s group now (itself unless merged); None: no such customer."""
    root: UUID | None = await conn.fetchval(_Q["customer_root"], customer_id)
    return root


def suggestion_from_row(row: Mapping[str, Any]) -> MergeSuggestion:
    """A suggestion row, its two sides shown as the customers they belong to now."""
    return MergeSuggestion(
        id=row["id"],
        customer_a=row["root_a"],
        customer_b=row["root_b"],
        kind=row["kind"],
        status=row["status"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        evidence_count=row["evidence_count"],
        identifier_ids=list(row["identifier_ids"]),
        reasons=list(row["reasons"] or []),
        score=row["score"],
        verification=row["verification"],
        conflict=row["conflict"],
        interaction_id=row["interaction_id"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
        decision_reason=row["decision_reason"],
        merge_id=row["merge_id"],
    )


def merge_from_row(row: Mapping[str, Any]) -> CustomerMerge:
    return msgspec.convert(dict(row), CustomerMerge)


async def explain_customer(conn: asyncpg.Connection, customer_id: UUID) -> CustomerIdentity | None:
    """Every identifier of the customer's group with the evidence that linked it, the merge history and the open
    suggestions. `customer_id` may be a customer merged into another: the answer is about the whole group."""
    root = await customer_root(conn, customer_id)
    if root is None:
        return None
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        members = await conn.fetch(_Q["group_members"], root)
        identifiers = await conn.fetch(_Q["group_identifiers"], root)
        member_ids = [m["id"] for m in members]
        merges = [merge_from_row(r) for r in await conn.fetch(_Q["merges_naming"], member_ids)]
        suggestions = [suggestion_from_row(r) for r in await conn.fetch(_Q["open_suggestions_naming"], member_ids)]
    active_merge_of = {m.merged_id: m.id for m in merges if m.undone_at is None}
    display_name = next((m["display_name"] for m in members if m["id"] == root), None)
    return CustomerIdentity(
        customer_id=root,
        display_name=display_name,
        merged_customer_ids=[m for m in member_ids if m != root],
        identifiers=[_explained(row, active_merge_of) for row in identifiers],
        merges=merges,
        suggestions=suggestions,
    )


def _explained(row: Mapping[str, Any], active_merge_of: Mapping[UUID, UUID]) -> ExplainedIdentifier:
    link = None
    if row["link_rule"] is not None:
        link = IdentifierLink(
            rule=row["link_rule"],
            linked_at=row["linked_at"],
            verification=row["link_verification"],
            interaction_id=row["linked_by_interaction"],
            actor=row["linked_by"],
        )
    return ExplainedIdentifier(
        id=row["id"],
        kind=row["kind"],
        value=row["value"],
        verification=row["verification"],
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        shared=row["shared"],
        customer_id=row["customer_id"],
        link=link,
        merge_id=active_merge_of.get(row["customer_id"]),
    )


async def lookup_identifier(
    conn: asyncpg.Connection, kind: IdentifierKind, raw_value: str, *, default_region: str, policy: IdentityPolicy
) -> IdentityLookup:
    """Who `raw_value` belongs to, normalized exactly as ingest normalizes it. A shared identifier answers with its
    candidates and no customer."""
    normalized = normalize_identifier(Identifier(kind=kind, value=raw_value), default_region, policy.rules)
    if normalized is None:
        return IdentityLookup(status="unknown", kind=kind, value=None)
    row = await conn.fetchrow(_Q["lookup_identifier"], kind, normalized.value)
    if row is None or (row["root_id"] is None and not row["shared"]):
        return IdentityLookup(status="unknown", kind=kind, value=normalized.value)
    if row["shared"]:
        return IdentityLookup(
            status="ambiguous",
            kind=kind,
            value=normalized.value,
            identifier_id=row["id"],
            verification=row["verification"],
            candidates=list(row["candidates"] or []),
        )
    return IdentityLookup(
        status="found",
        kind=kind,
        value=normalized.value,
        identifier_id=row["id"],
        verification=row["verification"],
        customer_id=row["root_id"],
    )
