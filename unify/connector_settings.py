"""Per-connector settings, kept in the `connector_setting` table and read into `connectors.ConnectorSettings`."""

from __future__ import annotations

from typing import Any

import asyncpg

from connectors._base import ConnectorSettings
from unify.errors import BadRequest
from unify.store import load_queries

_Q = load_queries("connectors")
SETTING_NAMES = (
    "secret",
    "basic_auth",
    "default_region",
    "public_base_url",
    "max_skew_seconds",
    "timezone",
    "verify",
)


def to_connector_settings(stored: dict[str, Any], *, default_region: str) -> ConnectorSettings:
    values = {k: v for k, v in stored.items() if k in SETTING_NAMES}
    values.setdefault("default_region", default_region)
    options = {k: str(v) for k, v in stored.items() if k not in SETTING_NAMES}
    return ConnectorSettings(**values, options=options)


async def load_connector_settings(
    conn: asyncpg.Connection, connector: str, *, default_region: str
) -> ConnectorSettings:
    stored = await conn.fetchval(_Q["get_connector_settings"], connector) or {}
    return to_connector_settings(stored, default_region=default_region)


async def save_connector_settings(conn: asyncpg.Connection, connector: str, **values: Any) -> dict[str, Any]:
    """Set (or, with None, remove) settings of one connector; returns all its settings."""
    if values.get("public_base_url"):
        url = str(values["public_base_url"])
        if not url.startswith(("https://", "http://")):
            raise BadRequest("public_base_url must start with https:// (or http://)")
        values["public_base_url"] = url.rstrip("/")
    if "max_skew_seconds" in values and values["max_skew_seconds"] is not None:
        values["max_skew_seconds"] = int(values["max_skew_seconds"])
    return await conn.fetchval(_Q["upsert_connector_settings"], connector, values)


async def list_connector_settings(conn: asyncpg.Connection) -> list[tuple[str, dict[str, Any]]]:
    return [(r["connector"], r["settings"]) for r in await conn.fetch(_Q["list_connector_settings"])]
