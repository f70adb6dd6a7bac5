"""`unify replay`: stored raw deliveries that failed are applied again after a fix, on their own row, idempotently.

The original deliveries go through the real HTTP API into a real PostgreSQL; replay then runs with the real
connectors (and once as the real `unify replay` process)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from schemas._replay import ReplayReport, ReplayRequest
from tests.events import native_event
from tests.raw import TEST_KEYRING
from tests.server import unify_env as _env
from tests.webhooks.helpers import configure, interactions, post_webhook, raw_events
from tests.webhooks.test_sms_webhooks import TWILIO_TOKEN, twilio_body, twilio_headers
from unify.auth import create_key
from unify.privacy.setup import ingest_options
from unify.replay import ReplayContext, replay
from unify.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
PBX_AUTH = "pbx:secret-upload-password"

BOOM = """
create function replay_test_boom() returns trigger language plpgsql as $$
begin
    if new.external_id like 'boom-%' then raise exception 'boom: % is cursed', new.external_id; end if;
    return new;
end $$;
create trigger replay_test_boom before insert on interaction for each row execute function replay_test_boom();
"""
UNBOOM = "drop trigger replay_test_boom on interaction; drop function replay_test_boom();"


@pytest.fixture
def context(settings: Settings) -> ReplayContext:
    return ReplayContext(
        options=ingest_options(settings),
        keyring=TEST_KEYRING,
        default_region=settings.default_region,
        max_batch=settings.max_batch,
    )


async def _replay(pool: asyncpg.Pool, context: ReplayContext, **asked: Any) -> ReplayReport:
    return await replay(pool, ReplayRequest(**asked), context)


async def _send_failing_batch(client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection) -> int:
    """A native batch that fails to apply (a trigger raises): 500, the raw body kept as failed. Returns its id."""
    await db.execute(BOOM)
    batch = [native_event("ok-1"), native_event("boom-1", channel="voice")]
    response = await client.post("/v1/interactions", json=batch, headers=auth)
    assert response.status_code == 500, response.text
    row = await db.fetchrow("select id, status, error from raw_event order by id desc limit 1")
    assert row["status"] == "failed" and "boom-1 is cursed" in row["error"]["detail"]
    assert await db.fetchval("select count(*) from interaction") == 0
    return row["id"]


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


async def _upload_cdr(client: AsyncTestClient, body: bytes) -> Any:
    headers = {"Content-Type": "text/csv", "Authorization": _basic(PBX_AUTH)}
    return await post_webhook(client, "cdr-csv", body, headers)


# ---------------------------------------------------------------------------------------------------------------
# 1. failed → fixed → replayed, idempotently


async def test_failed_native_batch_is_replayed_onto_its_own_row_once(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, pool: asyncpg.Pool, context: ReplayContext
) -> None:
    raw_id = await _send_failing_batch(client, auth, db)
    await db.execute(UNBOOM)

    report = await _replay(pool, context)
    assert (report.selected, report.processed, report.still_failing, report.skipped) == (1, 1, 0, 0)
    [done] = report.deliveries
    assert (done.raw_event_id, done.route, done.status_before, done.status_after, done.outcome) == (
        raw_id,
        "native",
        "failed",
        "processed",
        "processed",
    )
    assert (done.created, done.updated, done.duplicates, done.error) == (2, 0, 0, None)
    assert report.ok

    row = await db.fetchrow("select * from raw_event where id = $1", raw_id)
    assert (row["status"], row["error"], row["processed_at"] is not None) == ("processed", None, True)
    assert row["event_keys"] == ["native/ok-1", "native/boom-1"]
    assert await db.fetchval("select count(*) from raw_event") == 1  # never a second row
    stored = await db.fetch("select external_id, raw_event_id from interaction")
    assert sorted((r["external_id"], r["raw_event_id"]) for r in stored) == [("boom-1", raw_id), ("ok-1", raw_id)]
    # linked like the live path: the phone became an identifier of one customer
    assert await db.fetchval("select count(*) from identifier where customer_id is not null") == 1

    again = await _replay(pool, context)
    assert (again.selected, again.deliveries) == (0, [])

    forced = await _replay(pool, context, ids=[raw_id], force=True)
    [dup] = forced.deliveries
    assert (dup.status_before, dup.status_after, dup.outcome) == ("processed", "processed", "processed")
    assert (dup.created, dup.updated, dup.duplicates) == (0, 0, 2)
    assert await db.fetchval("select count(*) from interaction") == 2
    assert await db.fetchval("select count(*) from raw_event") == 1


async def test_still_failing_keeps_the_row_failed_with_the_new_error(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, pool: asyncpg.Pool, context: ReplayContext
) -> None:
    raw_id = await _send_failing_batch(client, auth, db)
    report = await _replay(pool, context)  # the trigger is still there
    [still] = report.deliveries
    assert (still.status_after, still.outcome) == ("failed", "failed") and "boom-1 is cursed" in (still.error or "")
    assert not report.ok and report.still_failing == 1
    row = await db.fetchrow("select status, error, processed_at from raw_event where id = $1", raw_id)
    assert (row["status"], row["processed_at"]) == ("failed", None) and "cursed" in row["error"]["detail"]
    assert await db.fetchval("select count(*) from interaction") == 0  # all or nothing: ok-1 rolled back too


# ---------------------------------------------------------------------------------------------------------------
# 2. rejected by a wrong setting → corrected → replayed with the right values


async def test_rejected_cdr_upload_is_replayed_after_the_timezone_setting_is_fixed(
    client: AsyncTestClient, db: asyncpg.Connection, pool: asyncpg.Pool, context: ReplayContext
) -> None:
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH, timezone="Europe/Berlinn")
    response = await _upload_cdr(client, (FIXTURES / "cdr-csv" / "asterisk-Master.csv").read_bytes())
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "timezone"
    [raw] = await raw_events(db, "cdr-csv")
    assert raw["status"] == "rejected"

    await configure(db, "cdr-csv", timezone="Europe/Berlin")  # the fix, as `unify connectors set` does it
    report = await _replay(pool, context, connectors=["cdr-csv"])
    [done] = report.deliveries
    assert (done.raw_event_id, done.status_before, done.status_after, done.created) == (
        raw["id"],
        "rejected",
        "processed",
        5,
    )
    rows = await interactions(db, "cdr-csv")
    first = next(r for r in rows if r["external_id"] == "1762161302.18")
    # 09:15:02 in Berlin (CET in November) is 08:15:02 UTC: the corrected setting was used
    assert first["occurred_at"] == datetime(2026, 11, 3, 8, 15, 2, tzinfo=UTC)
    assert {r["raw_event_id"] for r in rows} == {raw["id"]}
    assert [r["status"] for r in await raw_events(db, "cdr-csv")] == ["processed"]


# ---------------------------------------------------------------------------------------------------------------
# 3. unverified: only with --reverify, checked again with the current settings


async def test_unverified_delivery_is_replayed_only_when_it_verifies_again(
    client: AsyncTestClient, db: asyncpg.Connection, pool: asyncpg.Pool, context: ReplayContext
) -> None:
    await configure(db, "twilio-sms", secret="a-wrong-token")
    body = twilio_body("incoming-sms.txt")
    response = await post_webhook(client, "twilio-sms", body, twilio_headers(body))  # signed with the real token
    assert response.status_code == 401
    [raw] = await raw_events(db, "twilio-sms")
    assert raw["status"] == "unverified"

    assert (await _replay(pool, context)).selected == 0  # never without --reverify
    assert (await _replay(pool, context, statuses=["unverified"])).selected == 0

    wrong = await _replay(pool, context, reverify=True)
    [still] = wrong.deliveries
    assert (still.status_before, still.status_after, still.outcome) == ("unverified", "unverified", "unverified")
    assert "X-Twilio-Signature" in (still.error or "") and still.errors[0].field == "x-twilio-signature"
    assert not wrong.ok
    assert await interactions(db, "twilio-sms") == []

    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    fixed = await _replay(pool, context, reverify=True)
    [done] = fixed.deliveries
    assert (done.status_after, done.outcome, done.reverified, done.created) == ("processed", "processed", True, 1)
    [row] = await interactions(db, "twilio-sms")
    assert row["external_id"] == "SM3f8a2c1d9b7e4a6f8c0d2e4f6a8b0c1d" and row["raw_event_id"] == raw["id"]


async def test_basic_auth_deliveries_cannot_be_reverified_and_are_skipped(
    client: AsyncTestClient, db: asyncpg.Connection, pool: asyncpg.Pool, context: ReplayContext
) -> None:
    await configure(db, "cdr-csv", basic_auth="pbx:another-password")
    response = await _upload_cdr(client, (FIXTURES / "cdr-csv" / "asterisk-Master.csv").read_bytes())
    assert response.status_code == 401
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    report = await _replay(pool, context, reverify=True)
    [skipped] = report.deliveries
    assert (skipped.outcome, skipped.status_after) == ("skipped", "unverified")
    assert "basic auth" in (skipped.error or "") and report.ok
    assert await interactions(db, "cdr-csv") == []
    assert [r["status"] for r in await raw_events(db, "cdr-csv")] == ["unverified"]


# ---------------------------------------------------------------------------------------------------------------
# 4. selection and dry run


async def test_selection_filters_and_dry_run(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, pool: asyncpg.Pool, context: ReplayContext
) -> None:
    failed_id = await _send_failing_batch(client, auth, db)
    await db.execute(UNBOOM)
    bad = json.dumps(native_event("bad-1", channel="fax")).encode()
    rejected = await client.post("/v1/interactions", content=bad, headers={**auth, "Content-Type": "application/json"})
    rejected_id = rejected.json()["raw_event_id"]
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    cdr = await _upload_cdr(client, b"not,a,cdr\n")
    cdr_id = cdr.json()["raw_event_id"]
    base = datetime(2026, 1, 10, tzinfo=UTC)
    for offset, raw_id in enumerate((failed_id, rejected_id, cdr_id)):
        await db.execute("update raw_event set received_at = $2 where id = $1", raw_id, base + timedelta(days=offset))

    async def chosen(**asked: Any) -> list[int]:
        return [d.raw_event_id for d in (await _replay(pool, context, dry_run=True, **asked)).deliveries]

    assert await chosen() == [failed_id, rejected_id, cdr_id]
    assert await chosen(connectors=["cdr-csv"]) == [cdr_id]
    assert await chosen(connectors=["native"]) == [failed_id, rejected_id]
    assert await chosen(since=base + timedelta(days=1)) == [rejected_id, cdr_id]
    assert await chosen(until=base + timedelta(days=1)) == [failed_id]
    assert await chosen(since=base + timedelta(hours=1), until=base + timedelta(days=2)) == [rejected_id]
    assert await chosen(ids=[cdr_id, failed_id]) == [failed_id, cdr_id]
    assert await chosen(statuses=["rejected"]) == [rejected_id, cdr_id]
    assert await chosen(limit=1) == [failed_id]

    before = [dict(r) for r in await db.fetch("select id, status, error, processed_at from raw_event order by id")]
    dry = await _replay(pool, context, dry_run=True)
    assert dry.dry_run and [d.outcome for d in dry.deliveries] == ["processed", "rejected", "rejected"]
    assert dry.created == 2 and dry.deliveries[1].errors[0].field == "$.channel"
    after = [dict(r) for r in await db.fetch("select id, status, error, processed_at from raw_event order by id")]
    assert after == before
    assert await db.fetchval("select count(*) from interaction") == 0
    assert await db.fetchval("select count(*) from identifier") == 0


# ---------------------------------------------------------------------------------------------------------------
# 5. the command line


async def test_cli_replay_prints_the_report_and_exits_by_outcome(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, database_url: str
) -> None:
    failed_id = await _send_failing_batch(client, auth, db)
    await db.execute(UNBOOM)
    bad = json.dumps(native_event("bad-1", channel="fax")).encode()
    rejected = await client.post("/v1/interactions", content=bad, headers={**auth, "Content-Type": "application/json"})
    rejected_id = rejected.json()["raw_event_id"]
    env = _env(DATABASE_URL=database_url)
    command = [sys.executable, "-m", "unify.cli", "replay", "--json"]

    done = await asyncio.to_thread(_run, [*command, "--id", str(failed_id)], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["selected"], report["processed"], report["created"]) == (1, 1, 2)
    [entry] = report["deliveries"]
    assert (entry["raw_event_id"], entry["route"], entry["status_before"], entry["status_after"]) == (
        failed_id,
        "native",
        "failed",
        "processed",
    )
    assert any(json.loads(line).get("event") == "replay.event" for line in done.stderr.splitlines() if line[:1] == "{")
    assert await db.fetchval("select count(*) from interaction") == 2

    still = await asyncio.to_thread(_run, [*command, "--connector", "native"], env)
    assert still.returncode == 1, still.stderr
    report = json.loads(still.stdout)
    assert [(d["raw_event_id"], d["outcome"]) for d in report["deliveries"]] == [(rejected_id, "rejected")]


# ---------------------------------------------------------------------------------------------------------------
# 6. over HTTP (scope admin)


async def test_http_replay_answers_the_report(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    failed_id = await _send_failing_batch(client, auth, db)
    await db.execute(UNBOOM)
    admin_key, _ = await create_key(db, "admin", ["admin"])
    admin = {"Authorization": f"Bearer {admin_key}"}
    assert (await client.post("/v1/raw-events/replay", json={}, headers=auth)).status_code == 403
    bad = await client.post("/v1/raw-events/replay", json={"statuses": ["sideways"]}, headers=admin)
    assert bad.status_code == 400

    dry = await client.post("/v1/raw-events/replay", json={"connectors": ["native"], "dry_run": True}, headers=admin)
    assert dry.status_code == 200, dry.text
    assert (dry.json()["dry_run"], dry.json()["created"]) == (True, 2)
    assert await db.fetchval("select status from raw_event where id = $1", failed_id) == "failed"

    done = await client.post("/v1/raw-events/replay", json={"ids": [failed_id]}, headers=admin)
    assert done.status_code == 200, done.text
    [entry] = done.json()["deliveries"]
    assert (entry["status_before"], entry["status_after"], entry["created"]) == ("failed", "processed", 2)
    assert await db.fetchval("select status from raw_event where id = $1", failed_id) == "processed"
