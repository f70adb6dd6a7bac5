"""What `GET /v1/stream` pushes: a compact notice per new or updated interaction, and the stream's own events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct

from schemas._common import Channel, Direction, InteractionStatus

InteractionChange = Literal["created", "updated"]
"""`created`: a new interaction; `updated`: a later delivery (higher revision, more fields) changed a stored one."""

ResyncReason = Literal["overflow", "reconnected"]
"""Why notices may have been missed: the client read too slowly and the oldest were dropped (`overflow`), or the
server's database listener reconnected (`reconnected`)."""


class InteractionNotice(Struct, frozen=True, kw_only=True):
    """A new or updated interaction, as pushed by `GET /v1/stream` (event `interaction`, SSE `id` = the
    interaction id). Compact on purpose: enough to decide whether to refresh a customer card, which the desktop then
    reads with `GET /v1/interactions/{id}` or `GET /v1/customers/{id}`. Sent when the change is committed, after
    the event's identifiers were linked; bulk imports (`POST /v1/import`, `unify import`) send none."""

    interaction_id: UUID
    customer_id: Annotated[
        UUID | None,
        Meta(description="The customer as linked at commit (the root of its merge group); null when unidentified."),
    ]
    change: InteractionChange
    channel: Channel
    direction: Direction
    status: InteractionStatus
    revision: int = 0
    occurred_at: datetime
    agent: str | None = None
    queue: str | None = None
    identifiers: Annotated[
        list[str],
        Meta(
            description=(
                "The interaction's normalized identifiers as `kind:value` (`phone:+14155550100`). On a stream whose "
                "`ready` says `masked`, each one but those of the filter shows only its last two characters "
                "(`email:•••om`), as the context of an unverified lookup does."
            )
        ),
    ] = []
    identifiers_truncated: Annotated[
        bool,
        Meta(description="True when identifiers were left out to keep the notice small (more than 50, or long)."),
    ] = False


class StreamReady(Struct, frozen=True, kw_only=True):
    """The first event of `GET /v1/stream` (event `ready`): the filter as understood, normalized like ingest. A
    notice is delivered when any one of the given fields matches."""

    customer_ids: Annotated[
        list[UUID],
        Meta(description="The customer asked for and the root of its merge group (re-resolved while open)."),
    ] = []
    identifiers: Annotated[list[str], Meta(description="Normalized `kind:value` identifiers.")] = []
    identifier_customer_ids: Annotated[
        list[UUID],
        Meta(
            description=(
                "The customers those identifiers belong to (their groups' roots; re-resolved at every heartbeat): "
                "their other interactions are sent too."
            )
        ),
    ] = []
    agent: str | None = None
    queue: str | None = None
    heartbeat_seconds: float
    masked: Annotated[
        bool,
        Meta(
            description=(
                "True when the stream follows an identifier at a `verification` below what reveals everything "
                "(UNIFY_CONTEXT_UNVERIFIED_VIEW): the notices' other identifiers are masked."
            )
        ),
    ] = False


class StreamResync(Struct, frozen=True, kw_only=True):
    """Notices may have been missed (event `resync`): re-read the context you show instead of relying on the
    notices so far."""

    reason: ResyncReason
    dropped: Annotated[int, Meta(ge=0, description="How many notices were dropped for this client (overflow).")] = 0
