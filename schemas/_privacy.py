"""Bodies of the privacy endpoints: erasing a customer (`DELETE /v1/customers/{id}`) and exporting everything held
about them (`GET /v1/customers/{id}/export`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from msgspec import Meta, Struct, field

from schemas._common import IdentifierKind, Verification
from schemas._interaction import InteractionEvent


class ErasureRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a customer is being erased. The reason is kept in the erasure log, so it must not name the customer:
    a request naming one of their identifiers, their name or their id is refused."""

    reason: Annotated[
        str,
        Meta(
            min_length=3,
            max_length=500,
            description="Why (a ticket or request reference, the legal ground); 3 to 500 characters.",
            examples=["GDPR art. 17 request, ticket DPO-2291"],
        ),
    ]


class ErasureCounts(Struct, frozen=True, kw_only=True):
    """How many rows of each kind an erasure deleted."""

    interactions: int
    identifiers: int
    raw_events: int
    fragments: int
    merges: int = 0
    suggestions: int = 0
    promises: int = 0
    context_reads: int = 0


class ErasureReceipt(Struct, frozen=True, kw_only=True):
    """Proof that a customer was erased: the erasure log entry. It holds no personal data, not even the customer's
    id, only what was deleted."""

    id: UUID
    erased_at: datetime
    counts: ErasureCounts


class ExportedCustomer(Struct, frozen=True, kw_only=True):
    """The customer record itself."""

    id: UUID
    display_name: str | None
    created_at: datetime


class ExportedIdentifier(Struct, frozen=True, kw_only=True):
    """One identifier linked to the customer, with the evidence that linked it."""

    kind: IdentifierKind
    value: str
    verification: Verification
    first_seen: datetime
    last_seen: datetime
    linked_at: datetime | None
    link_rule: str | None
    linked_by_interaction: UUID | None


class ExportedInteraction(Struct, frozen=True, kw_only=True):
    """One interaction linked to one of the customer's identifiers, with its full stored event (texts included)."""

    id: UUID
    received_at: datetime
    updated_at: datetime
    event: InteractionEvent


class CustomerExport(Struct, frozen=True, kw_only=True):
    """Everything unify holds about one customer, as one document (the right of access).

    Asked for a customer that was merged into another, the document covers the whole merged group. `merges` lists
    every merge naming one of its customers (undone ones too); every promise made to them; every read of their
    context (who looked them up, when, by which identifier)."""

    exported_at: datetime
    customer: ExportedCustomer
    identifiers: list[ExportedIdentifier]
    interactions: list[ExportedInteraction]
    merges: list[dict[str, Any]]
    promises: list[dict[str, Any]]
    context_reads: list[dict[str, Any]] = field(default_factory=list)
