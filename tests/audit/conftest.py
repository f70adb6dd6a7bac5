"""Audit fixtures: settings with a small minimum count (the hand-built data sets are small), a key with
`audit:read`, and a loader that sends events through the real ingest path."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import pytest

from schemas import InteractionEvent
from unify.auth import create_key
from unify.ingest import RawDelivery, ingest_events
from unify.privacy.setup import ingest_options
from unify.settings import Settings
from unify.store import open_pool

MIN_COUNT = 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, audit_min_count=MIN_COUNT, repeat_window_days=7.0)


@pytest.fixture
async def auditor(db: asyncpg.Connection) -> dict[str, str]:
    key, _ = await create_key(db, "auditor", ["audit:read"])
    return {"Authorization": f"Bearer {key}"}


def ident(kind: str, value: str, verification: str = "unverified") -> dict[str, str]:
    return {"kind": kind, "value": value, "verification": verification}


def contact(
    external_id: str,
    channel: str,
    at: str,
    *identifiers: dict[str, str],
    direction: str = "inbound",
    status: str = "completed",
    answered: str | None = None,
    ended: str | None = None,
    wait: float | None = None,
    hold: float | None = None,
    talk: float | None = None,
    reason: str | None = None,
    queue: str | None = None,
    transfers: int = 0,
    thread: str | None = None,
    **details: Any,
) -> dict[str, Any]:
    """A native event with exactly the figures given (nothing defaulted that the audit would count)."""
    event: dict[str, Any] = {
        "source": "native",
        "external_id": external_id,
        "channel": channel,
        "direction": direction,
        "occurred_at": at,
        "status": status,
        "customer": {"identifiers": list(identifiers)},
        "details": {"type": channel, **details},
        "transfer_count": transfers,
    }
    optional = {
        "answered_at": answered,
        "ended_at": ended,
        "queue_wait_seconds": wait,
        "hold_seconds": hold,
        "talk_seconds": talk,
        "reason": reason,
        "queue": queue,
        "thread_key": thread,
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    return event


async def ingest(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Through unify.ingest, as `POST /v1/interactions` does (one delivery per event, in order)."""
    assert settings.database_url
    options = ingest_options(settings)
    pool = await open_pool(settings.database_url, min_size=1, max_size=1)
    try:
        for event in events:
            body = msgspec.json.encode(event)
            raw = RawDelivery("/v1/interactions", "application/json", [], body, len(body))
            await ingest_events(pool, raw, [msgspec.convert(event, InteractionEvent)], options=options)
    finally:
        await pool.close()
