"""What a replay of stored raw deliveries (`unify replay`, `POST /v1/raw-events/replay`) was asked and did."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from schemas._api import FieldError

RawStatus = Literal["received", "processed", "rejected", "unverified", "failed"]
"""A raw delivery's status: `processed` (its events are stored), `rejected` (invalid, 4xx), `unverified` (failed
signature, 401), `failed` (applying it failed, 5xx)."""

ReplayOutcome = Literal["processed", "rejected", "unverified", "failed", "skipped"]
"""What replaying one raw delivery did: `processed` (its events were applied), `rejected` / `unverified` /
`failed` (it still fails, with the new error), `skipped` (it cannot be replayed; `error` says why; nothing written)."""

Count = Annotated[int, Meta(ge=0)]
RawEventId = Annotated[int, Meta(ge=1, le=9_223_372_036_854_775_807)]  # a bigint: larger ones name nothing


class ReplayRequest(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which raw deliveries to replay. Filters combine (all must match). Without `statuses`: `rejected` and
    `failed`, plus `unverified` with `reverify`, plus `processed` with `force`."""

    ids: Annotated[list[RawEventId], Meta(description="Raw event ids.")] = field(default_factory=list)
    connectors: Annotated[
        list[str], Meta(description="Routes: a connector name (`twilio-sms`) or `native` (`POST /v1/interactions`).")
    ] = field(default_factory=list)
    since: Annotated[datetime | None, Meta(description="Received at or after (RFC 3339 with an offset).")] = None
    until: Annotated[datetime | None, Meta(description="Received before (RFC 3339 with an offset).")] = None
    statuses: list[RawStatus] | None = None
    reverify: Annotated[
        bool,
        Meta(
            description="Also replay `unverified` deliveries, checking their signature again with the current "
            "settings and the stored headers (never ingested unverified)."
        ),
    ] = False
    force: Annotated[
        bool, Meta(description="Also replay `processed` deliveries (idempotent: they answer duplicates).")
    ] = False
    dry_run: Annotated[bool, Meta(description="Do everything, then roll back: report what would happen.")] = False
    limit: Annotated[int, Meta(ge=1, le=100_000)] | None = None


class ReplayedDelivery(Struct, frozen=True, kw_only=True):
    """One raw delivery replayed."""

    raw_event_id: int
    route: str
    received_at: datetime
    status_before: RawStatus
    status_after: RawStatus
    outcome: ReplayOutcome
    created: Count = 0
    updated: Count = 0
    duplicates: Count = 0
    reverified: Annotated[bool, Meta(description="Its signature was checked again (and passed).")] = False
    error: Annotated[str | None, Meta(description="Why it still fails, or why it was skipped.")] = None
    errors: list[FieldError] = field(default_factory=list)


class ReplayReport(Struct, frozen=True, kw_only=True):
    """The outcome of one replay run: one entry per selected raw delivery, in id order, then the totals."""

    dry_run: bool = False
    selected: Count = 0
    processed: Count = 0
    still_failing: Annotated[int, Meta(ge=0, description="Ended rejected, unverified or failed.")] = 0
    skipped: Count = 0
    created: Count = 0
    updated: Count = 0
    duplicates: Count = 0
    deliveries: list[ReplayedDelivery] = field(default_factory=list)
    elapsed_seconds: Annotated[float, Meta(ge=0)] = 0.0

    @property
    def ok(self) -> bool:
        """Every selected delivery ended processed or skipped."""
        return self.still_failing == 0
