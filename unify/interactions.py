"""Reading stored interactions and customers."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import msgspec

from schemas import Customer, CustomerIdentifier, Interaction, InteractionEvent
from unify.store import load_queries

_Q = load_queries("interactions")


async def get_interaction(conn: asyncpg.Connection, interaction_id: UUID) -> Interaction | None:
    row = await conn.fetchrow(_Q["get_interaction"], interaction_id)
    if row is None:
        return None
    return Interaction(
        id=row["id"],
        customer_id=row["customer_id"],
        identified=row["identified"],
        received_at=row["received_at"],
        updated_at=row["updated_at"],
        raw_event_id=row["raw_event_id"],
        event=msgspec.convert(row["event"], InteractionEvent),
    )


async def get_customer(conn: asyncpg.Connection, customer_id: UUID) -> Customer | None:
    row = await conn.fetchrow(_Q["get_customer"], customer_id)
    if row is None:
        return None
    identifiers = [
        msgspec.convert(dict(r), CustomerIdentifier)
        for r in await conn.fetch(_Q["get_customer_identifiers"], row["id"])
    ]
    return Customer(
        id=row["id"],
        display_name=row["display_name"],
        created_at=row["created_at"],
        identifiers=identifiers,
        merged_customer_ids=list(row["merged_customer_ids"]),
    )
