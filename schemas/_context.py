"""Bodies of the agent-context endpoints: who is on the line and everything that happened before, the customer's
timeline, promises made to them, and the log of who read whose context."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta, Struct, field

from schemas._common import AwareDatetime, Channel, Direction, IdentifierKind, Verification

ContextMatchStatus = Literal["found", "ambiguous", "unknown"]
"""How the lookup went: one customer (`found`); a shared identifier with several customers and none chosen
(`ambiguous`); never seen, or junk that never links (`unknown`: a new caller, answered with an empty context)."""

LookupKind = Literal["phone", "email", "chat", "account", "customer_id"]
"""What the context was asked by: an identifier kind, or a customer id the agent chose."""

PromiseStatus = Literal["open", "kept", "broken"]
"""`open` until someone marks it `kept` or `broken`; an open promise past its due time is overdue."""

GuidanceFlagName = Literal["suppress_offers", "vip", "at_risk"]
"""`suppress_offers`: fix the service, do not sell. `vip`: a high-value customer. `at_risk`: likely to leave."""

OpenThreadKind = Literal["email_thread", "chat_thread", "call_follow_up"]
"""An email or chat thread whose last message came from the customer, or a call that still needs a call back."""


class ContextCandidate(Struct, frozen=True, kw_only=True):
    """One of the customers seen with a shared identifier."""

    customer_id: UUID
    display_name: str | None
    last_contact_at: datetime | None


class ContextMatch(Struct, frozen=True, kw_only=True):
    """How the customer was found and how far the match can be trusted."""

    status: ContextMatchStatus
    kind: LookupKind
    value: str | None = field(default=None)
    """The normalized value looked up (null for junk such as an anonymous caller, or a customer-id lookup)."""
    identifier_verification: Verification | None = None
    """The strongest evidence ever recorded for this identifier."""
    lookup_verification: Verification
    """What the asking desktop said about the current contact (the `verification` parameter)."""
    trusted: bool
    """False when the lookup evidence is `unverified` and UNIFY_CONTEXT_UNVERIFIED_VIEW is `metadata`: message bodies,
    promise texts and the other identifiers are then masked."""
    candidates: list[ContextCandidate] = field(default_factory=list)


class ContextIdentifier(Struct, frozen=True, kw_only=True):
    """An identifier of the customer. Masked (value reduced to its last two characters) on an untrusted match,
    except the one looked up."""

    kind: IdentifierKind
    value: str
    verification: Verification
    shared: bool
    masked: bool


class ContextCustomer(Struct, frozen=True, kw_only=True):
    """The customer: the root of their merge group, with every identifier of the group."""

    id: UUID
    display_name: str | None
    created_at: datetime
    identifiers: list[ContextIdentifier]
    merged_customer_ids: list[UUID] = field(default_factory=list)


class TimelineEntry(Struct, frozen=True, kw_only=True):
    """One interaction, as a line of the customer's history. `subject` and `snippet` are null on an untrusted match."""

    interaction_id: UUID
    source: str
    channel: Channel
    direction: Direction
    occurred_at: datetime
    status: str
    reason: str | None
    disposition: str | None
    subject: str | None
    snippet: str | None
    """The event's snippet, else the first 200 characters of its text."""
    agent: str | None
    queue: str | None
    queue_wait_seconds: float | None
    hold_seconds: float | None
    talk_seconds: float | None
    transfer_count: int
    thread_key: str | None
    repeat: bool
    """This contact came within the repeat window of the customer's previous contact."""


class Timeline(Struct, frozen=True, kw_only=True):
    """A page of a customer's history, newest first. Pass `next_cursor` as `cursor` for the next page."""

    customer_id: UUID
    entries: list[TimelineEntry]
    next_cursor: str | None


class OpenThread(Struct, frozen=True, kw_only=True):
    """Something the customer is waiting on."""

    kind: OpenThreadKind
    channel: Channel
    thread_key: str | None
    interaction_id: UUID
    """The last interaction of the thread (for a call follow-up: the missed or promised call)."""
    last_at: datetime
    messages: int
    subject: str | None


class RepeatSummary(Struct, frozen=True, kw_only=True):
    """Is the customer back within the repeat window: contacts they started, on any channel, in the `window_days`
    before the current contact (`current_interaction_id`: the contact of the interaction the desktop named, else their
    latest contact while its conversation is live — a call leg not ended, a message of the last 15 minutes), or
    before now when there is none (the lookup itself is the new contact). The current contact is never counted."""

    is_repeat: bool
    window_days: float
    contacts: int
    """Earlier contacts within the window."""
    channels: list[Channel]
    since: datetime | None
    """The first of them."""
    reasons: list[str]
    last_contact_at: datetime | None
    """The last of them."""
    current_interaction_id: UUID | None = None
    """The contact taken for the current one, if any."""


class EffortSummary(Struct, frozen=True, kw_only=True):
    """What the customer has spent on the current journey (its contacts repeat each other within the window, the last
    within the window of now; none ongoing: zeros), next to what each agent's own leg shows."""

    ongoing: bool
    since: datetime | None
    interactions: int
    """Interactions of the journey, every leg of a transferred call counted."""
    contacts: int
    """Contacts the customer started (transfer legs and outbound calls not counted)."""
    customer_wait_seconds: float
    """Queue wait plus hold, summed over every leg: what the customer lived through."""
    queue_wait_seconds: float
    hold_seconds: float
    transfers: int
    agents: int
    longest_leg_wait_seconds: float
    """The most any single leg's record shows: what one agent sees."""
    average_leg_wait_seconds: float
    perception_gap: float | None
    """customer_wait_seconds / longest_leg_wait_seconds: how much worse it was than any one agent can see."""


class Promise(Struct, frozen=True, kw_only=True):
    """A commitment made to the customer. `text` is null in a context read on an untrusted match."""

    id: UUID
    customer_id: UUID
    text: str | None
    due_at: datetime
    channel: Channel | None
    agent: str | None
    interaction_id: UUID | None
    status: PromiseStatus
    overdue: bool
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None


class NewPromise(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A promise to record: what was promised, by when, on which channel, by whom."""

    text: Annotated[str, Meta(min_length=1, max_length=2000, examples=["Call back with the corrected bill"])]
    due_at: AwareDatetime
    channel: Channel | None = None
    agent: Annotated[str, Meta(min_length=1, max_length=512)] | None = None
    interaction_id: UUID | None = None


class PromiseUpdate(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Mark a promise kept or broken (or open again), with an optional note and who says so."""

    status: PromiseStatus
    note: Annotated[str, Meta(max_length=2000)] | None = None
    actor: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class GuidanceFlag(Struct, frozen=True, kw_only=True):
    """A flag for the agent, with the reasons it is raised (see the README for each formula)."""

    flag: GuidanceFlagName
    reasons: list[str]


class Context(Struct, frozen=True, kw_only=True):
    """Everything an agent needs when a contact arrives, in one answer."""

    generated_at: datetime
    match: ContextMatch
    customer: ContextCustomer | None
    timeline: list[TimelineEntry]
    next_cursor: str | None
    """Pass to `GET /v1/customers/{id}/timeline?cursor=` for older entries."""
    open_threads: list[OpenThread]
    repeat: RepeatSummary
    effort: EffortSummary
    promises: list[Promise]
    """Overdue first, then open by due time, then the latest resolved."""
    guidance: list[GuidanceFlag]


class ContextAccess(Struct, frozen=True, kw_only=True):
    """One read of a customer's context or timeline."""

    id: int
    read_at: datetime
    api_key_id: UUID | None
    route: Literal["context", "timeline"]
    customer_id: UUID | None
    identifier_kind: str | None
    identifier_value: str | None
    match_status: ContextMatchStatus
    verification: Verification
    masked: bool
