"""Retention: exactly the expired rows go, nothing else."""

from __future__ import annotations

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

from tests.events import native_event
from unify.privacy.retention import purge
from unify.settings import Settings


async def _age(db: asyncpg.Connection, raw_event_id: int, days: int) -> None:
    await db.execute(
        "update raw_event set received_at = now() - make_interval(days => $2) where id = $1", raw_event_id, days
    )


async def test_purge_removes_exactly_the_expired_raw_bodies(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    ids = {}
    for name, days in (("fresh", 1), ("old", 31), ("ancient", 200)):
        assert (await client.post("/v1/interactions", json=native_event(f"call-{name}"), headers=auth)).is_success
        raw_id = await db.fetchval("select max(id) from raw_event")
        await _age(db, raw_id, days)
        ids[name] = raw_id
    for name, days in (("rejected-recent", 31), ("rejected-expired", 91)):
        response = await client.post(
            "/v1/interactions", content=b"{broken", headers={**auth, "Content-Type": "application/json"}
        )
        await _age(db, response.json()["raw_event_id"], days)
        ids[name] = response.json()["raw_event_id"]

    report = await purge(db, settings)

    remaining = {r["id"] for r in await db.fetch("select id from raw_event")}
    assert remaining == {ids["fresh"], ids["rejected-recent"]}
    assert (report.raw_processed, report.raw_unprocessed) == (2, 1)
    # The interactions themselves stay: only raw bodies expire by default.
    assert await db.fetchval("select count(*) from interaction") == 3


async def test_channel_retention_purges_old_interactions_of_that_channel_only(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    old_call = native_event("call-old", occurred_at="2020-01-01T10:00:00Z", answered_at=None, ended_at=None)
    old_sms = native_event(
        "sms-old",
        channel="sms",
        occurred_at="2020-01-01T10:00:00Z",
        answered_at=None,
        ended_at=None,
        details={"type": "sms"},
    )
    new_call = native_event("call-new")
    for event in (old_call, old_sms, new_call):
        assert (await client.post("/v1/interactions", json=event, headers=auth)).status_code == 201

    report = await purge(db, msgspec.structs.replace(settings, retention_voice_days=365))

    assert report.interactions == {"voice": 1}
    left = {r["external_id"] for r in await db.fetch("select external_id from interaction")}
    assert left == {"sms-old", "call-new"}
    assert (
        await db.fetchval(
            "select count(*) from interaction_identifier ii left join interaction i on i.id = ii.interaction_id "
            "where i.id is null"
        )
        == 0
    )
