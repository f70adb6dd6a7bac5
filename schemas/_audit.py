"""The cross-channel consistency audit (`GET /v1/audit/consistency`, `unify audit`): is every channel treated alike?"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct, field

from schemas._common import Channel

Count = Annotated[int, Meta(ge=0)]
Rate = Annotated[float, Meta(ge=0, le=1)]
Seconds = Annotated[float, Meta(description="Seconds.")]

AuditFormat = Literal["json", "csv", "html"]
"""How the report is written: `json` (this schema), `csv` (one figure a row), `html` (a self-contained page)."""

AuditMetric = Literal[
    "first_answer_wait",
    "journey_wait",
    "repeat_rate",
    "first_contact_resolution",
    "transfer_rate",
    "abandonment_rate",
    "promise_kept_rate",
]
"""A figure the deviations compare: `first_answer_wait` (how long a contact waited for a person: its recorded queue
wait, else until it was answered, else until the first reply in its thread), `journey_wait` (recorded queue wait and
hold summed over the customer's journey; a journey with none recorded is left out), `repeat_rate`,
`first_contact_resolution`, `transfer_rate`, `abandonment_rate`, `promise_kept_rate` (promises kept of those due, by
the channel they were made on; every reason only)."""


class Quantiles(Struct, frozen=True, kw_only=True):
    """A distribution in seconds: `n` values, their median and 90th percentile (discrete: observed values; null when
    there is none)."""

    n: Count = 0
    median: Seconds | None = None
    p90: Seconds | None = None


class WaitFigures(Struct, frozen=True, kw_only=True):
    """Queue wait, hold, and the customer's wait (queue wait + hold, migration 0010's customer_wait_seconds)."""

    queue_wait: Quantiles
    hold: Quantiles
    customer_wait: Quantiles


class ChannelFigures(Struct, frozen=True, kw_only=True):
    """One channel's figures (`channel` null: every channel together) over the contacts of the range.

    A contact is an inbound interaction the customer started (not a transfer leg, not outbound or internal, not the
    next message of a conversation under way).
    `per_leg`: waits as each agent's record shows them, over inbound legs (contacts and the legs continuing them).
    `per_journey`: what the customer lived through, summed over every leg and contact of a journey (a run of
    contacts each repeating the one before), for journeys that started in the range on this channel; identified
    customers only. Handle time is talk + hold where the talk time is recorded, else answered → ended.
    Repeat and first-contact resolution are over identified contacts (an unidentified contact cannot be followed):
    a repeat follows the customer's previous contact, on any channel, within the repeat window; a contact is
    resolved at first contact when no repeat follows it within the window (counted once that window has passed:
    `fcr_settled`). Transferred: the platform counted a transfer, or a later leg names the contact it continues.
    Abandoned: migration 0010's failed contact (abandoned, unanswered, busy, failed, canceled, undelivered,
    bounced)."""

    channel: Channel | None = None
    contacts: Count = 0
    customers: Annotated[int, Meta(ge=0, description="Distinct identified customers behind the contacts.")] = 0
    unidentified: Count = 0
    unidentified_share: Rate | None = None
    identified_contacts: Count = 0
    legs: Annotated[int, Meta(ge=0, description="Inbound legs: contacts and their transfer legs.")] = 0
    per_leg: WaitFigures
    handle: Quantiles
    first_answer: Annotated[
        Quantiles,
        Meta(
            description=(
                "How long contacts waited for a person: the queue wait a contact's record shows, else the time until "
                "it was answered, else until the first reply in its thread from a person (contacts with none of "
                "these are left out: `n`)."
            )
        ),
    ] = Quantiles()
    journeys: Count = 0
    per_journey: WaitFigures
    transferred: Count = 0
    transfer_rate: Rate | None = None
    abandoned: Count = 0
    abandonment_rate: Rate | None = None
    repeats: Count = 0
    repeat_rate: Rate | None = None
    fcr_settled: Count = 0
    fcr_resolved: Count = 0
    first_contact_resolution: Rate | None = None


class ChannelSwitch(Struct, frozen=True, kw_only=True):
    """Repeat contacts made on `to_channel` whose previous contact (the one they repeat) was on `from_channel`."""

    from_channel: Channel
    to_channel: Channel
    repeats: Count


class PromiseFigures(Struct, frozen=True, kw_only=True):
    """Promises made in the range (created then) on a channel (`overall`: all of them), and what became of them:
    kept, broken, still open past their due time (overdue), still open. `kept_rate` = kept / (kept + broken +
    overdue): of the promises whose time has come."""

    overall: bool = False
    channel: Channel | None = None
    made: Count = 0
    kept: Count = 0
    broken: Count = 0
    overdue: Count = 0
    open: Count = 0
    kept_rate: Rate | None = None


class ReasonChannelFigures(Struct, frozen=True, kw_only=True):
    """One reason on one channel: contacts in the range, journeys that started there (their first contact had this
    reason and channel), how many are resolved (their last contact's repeat window passed with no repeat), and the
    median time to resolution: from the journey's first contact to the end of its last interaction."""

    reason: Annotated[str, Meta(description="The contact's reason; empty when none was recorded.")]
    channel: Channel
    contacts: Count = 0
    journeys: Count = 0
    resolved: Count = 0
    resolution_rate: Rate | None = None
    median_resolution_seconds: Seconds | None = None


class Deviation(Struct, frozen=True, kw_only=True):
    """One channel compared with the other channels together, for one figure, over every reason (`reason` null)
    or one. Rates use a two-proportion z-test; waits Mood's median test (a 2×2 chi-square, one degree of freedom,
    of the values above / at or below the pooled median). `ratio` (waits): this channel's median over the others'
    (medians under one second count as one second); `difference` (rates): this channel's rate minus the others'."""

    metric: AuditMetric
    reason: str | None = None
    channel: Channel
    value: float
    others: float
    n: Count
    others_n: Count
    ratio: float | None = None
    difference: float | None = None
    test: Literal["two-proportion z", "Mood median"]
    statistic: float
    p_value: Annotated[float, Meta(ge=0, le=1)]
    text: Annotated[str, Meta(description="The finding in plain words.")]


class WaitBucket(Struct, frozen=True, kw_only=True):
    """How many waits fell in [`from_seconds`, `to_seconds`) (`to_seconds` null: and longer)."""

    metric: Literal["first_answer_wait", "journey_wait"]
    channel: Channel
    from_seconds: float
    to_seconds: float | None = None
    count: Count


class IdentityHealth(Struct, frozen=True, kw_only=True):
    """Identity now (not limited to the range): merge suggestions waiting for a person, suggestions a per-kind limit
    vetoed (status `conflict`), identifiers shared by several customers (they link nobody)."""

    pending_suggestions: Count = 0
    conflicts: Count = 0
    shared_identifiers: Count = 0


class AuditThresholds(Struct, frozen=True, kw_only=True):
    """When a difference is a deviation (UNIFY_AUDIT_…): both sides with at least `min_count` values, the effect at
    least `rate_difference` (rates, absolute) or `wait_ratio` (waits, either way), and p below `significance`."""

    min_count: Count
    rate_difference: float
    wait_ratio: float
    significance: float


class ConsistencyReport(Struct, frozen=True, kw_only=True):
    """The cross-channel consistency audit of contacts in [`from`, `to`): per channel and overall, the switch
    matrix, promises, reasons × channels, the deviations worth a look (and those seen on too few contacts to
    judge), and identity health."""

    generated_at: datetime
    from_: datetime = field(name="from")
    to: datetime
    channel: Channel | None = None
    reason: str | None = None
    queue: str | None = None
    repeat_window_days: float
    thresholds: AuditThresholds
    overall: ChannelFigures
    channels: list[ChannelFigures] = field(default_factory=list)
    switches: list[ChannelSwitch] = field(default_factory=list)
    promises: list[PromiseFigures] = field(default_factory=list)
    reasons: list[ReasonChannelFigures] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    too_few: Annotated[
        list[Deviation],
        Meta(description="Differences past the threshold on fewer values than UNIFY_AUDIT_MIN_COUNT: not judged."),
    ] = field(default_factory=list)
    wait_histogram: list[WaitBucket] = field(default_factory=list)
    identity: IdentityHealth
    elapsed_seconds: Annotated[float, Meta(ge=0)] = 0.0
