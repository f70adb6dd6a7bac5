"""Raw bodies at rest: unreadable without the key, readable (and replayable) with it, re-encrypted on rotation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
from litestar.testing import AsyncTestClient

from connectors._base import ConnectorSettings, WebhookRequest
from connectors.registry import get_connector
from tests.events import native_event
from tests.raw import TEST_KEYRING, open_raw
from unify.privacy.vault import RawKeyring


async def test_raw_rows_are_unreadable_without_the_key(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    event = native_event(text="card 4242 4242 4242 4242, call me on +1 415 555 0100")
    assert (await client.post("/v1/interactions", json=event, headers=auth)).status_code == 201
    row = await db.fetchrow("select * from raw_event")
    stored = bytes(row["body"])
    for clear in (b"4242", b"415 555 0100", b"call me", b"native"):
        assert clear not in stored
    assert row["key_id"] == TEST_KEYRING.current_id
    assert b"4242 4242 4242 4242" in open_raw(row)  # the raw body itself is kept whole, under the key


async def test_a_stored_webhook_can_be_parsed_again_from_its_raw_row(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    body = urlencode(
        {
            "MessageSid": "SM" + "a" * 32,
            "AccountSid": "AC" + "b" * 32,
            "From": "+14155550100",
            "To": "+14155550199",
            "Body": "hello",
            "NumMedia": "0",
        }
    ).encode()
    response = await client.post(
        "/v1/webhooks/twilio-sms", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 401  # not configured: kept, unverified
    row = await db.fetchrow("select * from raw_event where route = 'twilio-sms'")
    assert b"hello" not in bytes(row["body"])
    connector = get_connector("twilio-sms")
    assert connector is not None
    request = WebhookRequest(
        method="POST",
        url="https://unify.example.com/v1/webhooks/twilio-sms",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=open_raw(row),
        received_at=row["received_at"],
    )
    [event] = connector.parse(request, ConnectorSettings()).events
    assert (event.external_id, event.text) == ("SM" + "a" * 32, "hello")


def test_rotate_raw_reencrypts_every_row_under_a_new_key(tmp_path: Path, database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("UNIFY_RAW_KEYS",)}
    env.update(DATABASE_URL=database_url, UNIFY_DATA_DIR=str(tmp_path), UNIFY_LOG_FORMAT="json")
    unify = [sys.executable, "-m", "unify.cli"]
    subprocess.run([*unify, "demo"], env=env, check=True, capture_output=True)
    first = RawKeyring.from_setting((tmp_path / "raw-keys").read_text().strip())

    done = subprocess.run([*unify, "keys", "rotate-raw"], env=env, check=True, capture_output=True, text=True)

    second = RawKeyring.from_setting((tmp_path / "raw-keys").read_text().strip())
    assert second.current_id != first.current_id and first.current_id in second
    assert "re-encrypted" in done.stdout

    async def check() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("select id, route, key_id, body from raw_event")
            assert rows and {r["key_id"] for r in rows} == {second.current_id}
            for r in rows:
                assert second.decrypt(r["key_id"], bytes(r["body"]), associated_data=r["route"].encode())
        finally:
            await conn.close()

    import asyncio

    asyncio.run(check())
