"""Helpers for webhook tests through the real HTTP route into the real PostgreSQL.

await configure(db, "twilio-sms", secret="12345")          # settings row; public base URL set for you
response = await post_webhook(client, "twilio-sms", body, {"Content-Type": "...", "X-Twilio-Signature": sig})
url = public_url("twilio-sms")                             # the URL a platform signs
"""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from litestar.testing import AsyncTestClient

from tests.raw import open_raw
from unify.connector_settings import save_connector_settings

PUBLIC_BASE = "https://unify.example.com"


def public_url(connector: str, query: str = "") -> str:
    return f"{PUBLIC_BASE}/v1/webhooks/{connector}" + (f"?{query}" if query else "")


async def configure(db: asyncpg.Connection, connector: str, **settings: Any) -> None:
    settings.setdefault("public_base_url", PUBLIC_BASE)
    await save_connector_settings(db, connector, **settings)


async def post_webhook(
    client: AsyncTestClient, connector: str, body: bytes, headers: dict[str, str], query: str = ""
) -> httpx.Response:
    path = f"/v1/webhooks/{connector}" + (f"?{query}" if query else "")
    return await client.post(path, content=body, headers=headers)


async def get_webhook(client: AsyncTestClient, connector: str, query: str) -> httpx.Response:
    return await client.get(f"/v1/webhooks/{connector}?{query}")


async def interactions(db: asyncpg.Connection, source: str) -> list[dict[str, Any]]:
    """Every stored interaction of one source, oldest first, as (columns + event) dicts."""
    rows = await db.fetch("select * from interaction where source = $1 order by occurred_at, external_id", source)
    return [dict(r) for r in rows]


async def raw_events(db: asyncpg.Connection, route: str) -> list[dict[str, Any]]:
    """Raw rows of one route, oldest first, with `body` decrypted to what the platform sent."""
    rows = [dict(r) for r in await db.fetch("select * from raw_event where route = $1 order by id", route)]
    return [{**row, "sealed_body": bytes(row["body"]), "body": open_raw(row)} for row in rows]
