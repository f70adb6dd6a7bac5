"""Bodies the HTTP API returns: stored interactions, ingest results, customers, keys, health and problems."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from msgspec import Struct, field

from schemas._common import IdentifierKind, Verification
from schemas._interaction import InteractionEvent

IngestOutcome = Literal["created", "updated", "duplicate"]
"""What an ingested event did: made a new interaction, advanced an existing one (higher revision), or nothing."""


class IngestResult(Struct, frozen=True, kw_only=True):
    """What happened to one ingested event."""

    interaction_id: UUID
    source: str
    external_id: str
    outcome: IngestOutcome
    customer_id: UUID | None = None


class IngestBatchResult(Struct, frozen=True, kw_only=True):
    """What happened to each event of a batch, in the order they were sent."""

    raw_event_id: int
    results: list[IngestResult]
    created: int
    updated: int
    duplicates: int


class Interaction(Struct, frozen=True, kw_only=True):
    """A stored interaction: the latest revision of its event, plus what unify knows about it."""

    id: UUID
    customer_id: UUID | None
    identified: bool
    received_at: datetime
    updated_at: datetime
    raw_event_id: int | None
    event: InteractionEvent


class CustomerIdentifier(Struct, frozen=True, kw_only=True):
    """An identifier linked to a customer, with how and when it was linked."""

    id: int
    kind: IdentifierKind
    value: str
    verification: Verification
    first_seen: datetime
    last_seen: datetime
    linked_at: datetime | None
    link_rule: str | None
    linked_by_interaction: UUID | None
    shared: bool = False


class Customer(Struct, frozen=True, kw_only=True):
    """A person, as the set of identifiers linked to them by evidence. Asked by the id of a customer that was merged
    into another, the answer is the customer it belongs to now (`merged_customer_ids` lists the merged ones)."""

    id: UUID
    display_name: str | None
    created_at: datetime
    identifiers: list[CustomerIdentifier]
    merged_customer_ids: list[UUID] = field(default_factory=list)


class FieldError(Struct, frozen=True, kw_only=True):
    """One thing wrong with a request: where (a JSON path like `$[2].occurred_at`, or a header name) and what."""

    field: str
    message: str


class Problem(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An error, as RFC 9457 problem details (`application/problem+json`)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    raw_event_id: int | None = None
    request_id: str | None = None


class Health(Struct, frozen=True, kw_only=True):
    """Liveness: the process is up."""

    status: Literal["ok"]


class Readiness(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Readiness: the database answers and every migration is applied."""

    status: Literal["ready", "unavailable"]
    database: Literal["up", "down"]
    migrations_applied: int = 0
    migrations_known: int = 0
    detail: str | None = None


Scope = Literal["ingest", "context:read", "context:write", "audit:read", "admin"]
"""What an API key may do: send interactions (`ingest`), read context (`context:read`), record promises
(`context:write`), read audits (`audit:read`). `admin` may do everything."""


class ApiKey(Struct, frozen=True, kw_only=True):
    """An API key as stored: never the secret itself, only its hash."""

    id: UUID
    name: str
    scopes: list[Scope]
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
