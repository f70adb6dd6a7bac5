"""The demo data set: deterministic, varied, and valid against the event contract. No database needed."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from schemas import InteractionEvent
from unify.demo import demo_events

NOW = datetime(2025, 6, 2, 14, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> list[InteractionEvent]:
    return demo_events(now=NOW)


def _by_customer(events: list[InteractionEvent]) -> dict[str, list[InteractionEvent]]:
    grouped: dict[str, list[InteractionEvent]] = defaultdict(list)
    for event in events:
        if event.customer.display_name:
            grouped[event.customer.display_name].append(event)
    return grouped


def test_same_seed_gives_same_events(events: list[InteractionEvent]) -> None:
    assert demo_events(now=NOW) == events
    assert demo_events(now=NOW, seed=8) != events


def test_another_day_shifts_times_but_keeps_external_ids(events: list[InteractionEvent]) -> None:
    shift = timedelta(days=3, hours=5)
    later = demo_events(now=NOW + shift)
    assert [e.external_id for e in later] == [e.external_id for e in events]
    assert all(b.occurred_at - a.occurred_at == shift for a, b in zip(events, later, strict=True))


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError):
        demo_events(now=datetime(2025, 6, 2, 14, 30))


def test_at_least_sixty_distinct_customers(events: list[InteractionEvent]) -> None:
    assert len(_by_customer(events)) >= 60
    assert len(_by_customer(demo_events(now=NOW, customers=80))) >= 80


def test_every_channel_is_used_and_most_customers_use_several(events: list[InteractionEvent]) -> None:
    assert {e.channel for e in events} == {"voice", "sms", "email", "chat"}
    multichannel = [name for name, own in _by_customer(events).items() if len({e.channel for e in own}) >= 2]
    assert len(multichannel) >= 20


def test_history_spans_six_weeks_in_the_past(events: list[InteractionEvent]) -> None:
    assert all(NOW - timedelta(days=42) <= e.occurred_at < NOW for e in events)
    assert all(e.ended_at is None or e.ended_at <= NOW for e in events)
    assert max(e.occurred_at for e in events) - min(e.occurred_at for e in events) > timedelta(days=30)


def test_calls_have_transfers_holds_and_consistent_times(events: list[InteractionEvent]) -> None:
    calls = [e for e in events if e.channel == "voice"]
    assert any(c.transfer_count > 0 for c in calls)
    assert any(c.transfer_count == 2 for c in calls)
    assert any((c.hold_seconds or 0) > 0 for c in calls)
    assert {"completed", "abandoned", "no_answer", "busy"} <= {c.status for c in calls}
    for call in calls:
        if call.answered_at is not None:
            assert call.occurred_at <= call.answered_at <= (call.ended_at or call.answered_at)


def test_identity_edge_cases_are_present(events: list[InteractionEvent]) -> None:
    phones = [i for e in events for i in e.customer.identifiers if i.kind == "phone"]
    assert any(p.value == "anonymous" for p in phones)
    assert any(p.verification == "carrier_attested" for p in phones)
    assert any(p.value.startswith("tel:") for p in phones) and any(p.value.startswith("(") for p in phones)
    callers = [(e.customer.display_name, i.value) for e in events for i in e.customer.identifiers]
    assert len({name for name, value in callers if value == "+1 212-555-0100"}) >= 2  # shared switchboard
    identifiers = [i for e in events for i in e.customer.identifiers]
    assert any(i.kind == "account" and i.verification == "authenticated" for i in identifiers)
    assert any(i.kind == "email" and i.verification == "signed" for i in identifiers)


def test_emails_thread_and_repeat_reasons_cross_channels(events: list[InteractionEvent]) -> None:
    replies = [e for e in events if e.channel == "email" and e.details.in_reply_to]  # type: ignore[union-attr]
    assert replies
    roots = {e.details.message_id: e for e in events if e.channel == "email"}  # type: ignore[union-attr]
    assert all(roots[r.details.in_reply_to].thread_key == r.thread_key for r in replies)  # type: ignore[union-attr]
    repeats = 0
    for own in _by_customer(events).values():
        channels_by_reason: dict[str, set[str]] = defaultdict(set)
        for event in own:
            if event.reason:
                channels_by_reason[event.reason].add(event.channel)
        repeats += any(len(channels) >= 2 for channels in channels_by_reason.values())
    assert repeats >= 20


def test_every_event_round_trips_through_json(events: list[InteractionEvent]) -> None:
    for event in events:
        assert msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent) == event
        assert event.occurred_at.tzinfo is not None and event.source == "demo"


def test_event_keys_are_unique(events: list[InteractionEvent]) -> None:
    keys = [(e.source, e.external_id) for e in events]
    assert len(keys) == len(set(keys))
