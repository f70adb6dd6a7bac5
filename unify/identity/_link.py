"""Linking an interaction's identifiers to a customer.

The rule here is deliberately simple: an identifier already linked to a customer brings the interaction to that
customer; identifiers nobody owns yet join the event's known customer, or a new customer when there is none.
Two customers are never merged by ingest."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from schemas import VERIFICATION_ORDER
from unify.identity._normalize import NormalizedIdentifier
from unify.store import load_queries

_Q = load_queries("identity")

RULE_FIRST_CONTACT = "first-contact"
RULE_SAME_EVENT = "same-event"


async def link_identifiers(
    conn: asyncpg.Connection,
    *,
    interaction_id: UUID,
    identifiers: list[NormalizedIdentifier],
    display_name: str | None,
    seen_at: object,
) -> UUID | None:
    """Record the identifiers of one interaction and link them; returns the interaction's customer, or None when
    no usable identifier came with it. Must run inside the ingest transaction."""
    if not identifiers:
        return None
    rows = await conn.fetch(
        _Q["upsert_identifiers"],
        [i.kind for i in identifiers],
        [i.value for i in identifiers],
        [i.verification for i in identifiers],
        seen_at,
    )
    level = {(i.kind, i.value): i.verification for i in identifiers}
    # Strongest evidence in this event first: it decides which existing customer the interaction belongs to.
    rows = sorted(rows, key=lambda r: -VERIFICATION_ORDER.index(level[(r["kind"], r["value"])]))
    owners = [r["customer_id"] for r in rows if r["customer_id"] is not None]
    if owners:
        customer_id: UUID = owners[0]
        rule = RULE_SAME_EVENT
        if display_name:
            await conn.execute(_Q["fill_customer_display_name"], customer_id, display_name)
    else:
        customer_id = await conn.fetchval(_Q["create_customer"], display_name)
        rule = RULE_FIRST_CONTACT
    unlinked = [r["id"] for r in rows if r["customer_id"] is None]
    if unlinked:
        await conn.execute(_Q["link_unlinked_identifiers"], unlinked, customer_id, rule, interaction_id)
    await conn.execute(
        _Q["attach_identifiers_to_interaction"],
        interaction_id,
        [r["id"] for r in rows],
        [level[(r["kind"], r["value"])] for r in rows],
    )
    return customer_id
