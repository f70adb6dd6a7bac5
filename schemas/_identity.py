"""Bodies of the identity endpoints: why identifiers belong to a customer, merges and their undo, detaching an
identifier, merge suggestions, and looking a customer up by an identifier."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct, field

from schemas._common import IdentifierKind, Verification

LinkRule = Literal["first-contact", "same-event", "detached"]
"""Why an identifier is linked to its customer: it arrived with nothing known and started the customer
(`first-contact`), it arrived in an event with an identifier the customer already owned (`same-event`), or a person
moved it (`detached`)."""

MergeRule = Literal["strong-evidence", "manual", "suggestion"]
"""Why two customers were merged: one event named both at or above UNIFY_MERGE_MIN_VERIFICATION
(`strong-evidence`), an administrator merged them (`manual`), or accepted a suggestion (`suggestion`)."""

SuggestionStatus = Literal["pending", "conflict", "accepted", "rejected", "dismissed"]
"""`pending`: awaiting review. `conflict`: merging would break a per-kind limit (see `conflict`). `accepted` (merged),
`rejected` (by a person), `dismissed` (its only evidence became a shared identifier)."""

Reason = Annotated[
    str,
    Meta(min_length=3, max_length=500, description="Why, in 3 to 500 characters.", examples=["ticket CX-1042"]),
]

Actor = Annotated[
    str, Meta(min_length=1, max_length=200, description="Who decided (default: the API key that made the request).")
]


class IdentifierLink(Struct, frozen=True, kw_only=True):
    """The evidence that linked an identifier to its customer."""

    rule: LinkRule
    linked_at: datetime
    verification: Verification | None = None
    interaction_id: UUID | None = None
    actor: str | None = field(default=None)


class ExplainedIdentifier(Struct, frozen=True, kw_only=True):
    """One identifier of a customer, how much it is trusted, and why it belongs to them. `customer_id` is the
    customer it was linked to; when that customer was merged into this one, `merge_id` names the merge."""

    id: int
    kind: IdentifierKind
    value: str
    verification: Verification
    first_seen: datetime
    last_seen: datetime
    shared: bool
    customer_id: UUID
    link: IdentifierLink | None
    merge_id: UUID | None = None


class CustomerMerge(Struct, frozen=True, kw_only=True):
    """One merge: `merged_id` (and everything merged into it before) joined `survivor_id`. Undone merges stay listed
    with who undid them and why."""

    id: UUID
    survivor_id: UUID
    merged_id: UUID
    rule: MergeRule
    merged_at: datetime
    verification: Verification | None = None
    interaction_id: UUID | None = None
    actor: str | None = None
    reason: str | None = None
    undone_at: datetime | None = None
    undone_by: str | None = None
    undo_reason: str | None = None


class MergeSuggestion(Struct, frozen=True, kw_only=True):
    """Two customers that may be one person. `evidence`: an event named both, too weakly to merge them (or a
    per-kind limit vetoed it: status `conflict`); `fuzzy`: similar names and shared attributes (never merges by
    itself). Customer ids are the customers as they stand now (after any later merge)."""

    id: UUID
    customer_a: UUID
    customer_b: UUID
    kind: Literal["evidence", "fuzzy"]
    status: SuggestionStatus
    created_at: datetime
    updated_at: datetime
    evidence_count: int
    identifier_ids: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    score: float | None = None
    verification: Verification | None = None
    conflict: str | None = None
    interaction_id: UUID | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    merge_id: UUID | None = None


class CustomerIdentity(Struct, frozen=True, kw_only=True):
    """Everything that makes up one customer: every identifier with why it is linked, the customers merged into
    this one, the merge history (undone merges too) and the open suggestions that name them."""

    customer_id: UUID
    display_name: str | None
    merged_customer_ids: list[UUID]
    identifiers: list[ExplainedIdentifier]
    merges: list[CustomerMerge]
    suggestions: list[MergeSuggestion]


class MergeRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Merge another customer into the one in the path. Refused (409) when a per-kind limit would break."""

    customer_id: Annotated[UUID, Meta(description="The customer to merge into the one in the path.")]
    reason: Reason
    actor: Actor | None = None


class UndoRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a merge is being undone."""

    reason: Reason
    actor: Actor | None = None


class DetachRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Move an identifier out of its customer: into `to_customer_id`, or (default) into a new customer of its own."""

    reason: Reason
    to_customer_id: UUID | None = None
    actor: Actor | None = None


class SuggestionDecision(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Accept (merge the two customers) or reject a suggestion."""

    reason: Reason
    actor: Actor | None = None


class MergeResult(Struct, frozen=True, kw_only=True):
    """A merge or an undo that happened, and the customer(s) as they stand now."""

    merge: CustomerMerge
    customers: list[CustomerIdentity]


class DetachResult(Struct, frozen=True, kw_only=True):
    """Where a detached identifier went."""

    identifier_id: int
    from_customer_id: UUID
    customer_id: UUID


LookupStatus = Literal["found", "ambiguous", "unknown"]


class IdentityLookup(Struct, frozen=True, kw_only=True):
    """Who an identifier belongs to. `found`: one customer. `ambiguous`: the identifier is shared (a switchboard, a
    family line) and `candidates` lists the customers seen with it; none is chosen. `unknown`: never seen, or junk
    that never links (then `value` is null)."""

    status: LookupStatus
    kind: IdentifierKind
    value: str | None
    identifier_id: int | None = None
    verification: Verification | None = None
    customer_id: UUID | None = None
    candidates: list[UUID] = field(default_factory=list)
