"""API keys: random secrets handed out once, stored only as SHA-256 hashes, each with scopes.

A key looks like `uk_<key id hex>_<secret>`. The id finds the row; the secret's hash must match. Keys are high-
entropy random strings, so a plain SHA-256 is the right hash (a slow password hash buys nothing here)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from uuid import UUID

import asyncpg

from schemas import ApiKey, Scope
from unify.errors import BadRequest, Forbidden, NotFound, Unauthorized
from unify.store import load_queries

_Q = load_queries("keys")
SCOPES: tuple[Scope, ...] = ("ingest", "context:read", "context:write", "audit:read", "admin")
_PREFIX = "uk_"


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


async def create_key(conn: asyncpg.Connection, name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
    """Create a key; returns the full key (shown once, never stored) and its stored record."""
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise BadRequest(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}")
    secret = secrets.token_urlsafe(32)
    row = await conn.fetchrow(_Q["create_api_key"], name, _hash(secret), wanted)
    key = ApiKey(id=row["id"], name=row["name"], scopes=list(row["scopes"]), created_at=row["created_at"])
    return f"{_PREFIX}{key.id.hex}_{secret}", key


async def list_keys(conn: asyncpg.Connection) -> list[ApiKey]:
    return [
        ApiKey(
            id=r["id"],
            name=r["name"],
            scopes=list(r["scopes"]),
            created_at=r["created_at"],
            revoked_at=r["revoked_at"],
            last_used_at=r["last_used_at"],
        )
        for r in await conn.fetch(_Q["list_api_keys"])
    ]


async def revoke_key(conn: asyncpg.Connection, key_id: UUID) -> None:
    if await conn.fetchval(_Q["revoke_api_key"], key_id) is None:
        raise NotFound(f"no active API key with id {key_id}")


class KeyChecker:
    """Verifies presented keys against the database, remembering good ones for `ttl` seconds so that a hot path
    does not pay a query per request. Revocation therefore takes effect within `ttl` seconds."""

    def __init__(self, pool: asyncpg.Pool, ttl: float) -> None:
        self._pool = pool
        self._ttl = ttl
        self._known: dict[str, tuple[float, UUID, frozenset[str]]] = {}

    async def authenticate(self, presented: str | None) -> tuple[UUID, frozenset[str]]:
        if not presented:
            raise Unauthorized("send an API key: `Authorization: Bearer <key>` or `X-API-Key: <key>`")
        now = time.monotonic()
        cached = self._known.get(presented)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        key_id, scopes = await self._check(presented)
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[presented] = (now + self._ttl, key_id, scopes)
        return key_id, scopes

    async def _check(self, presented: str) -> tuple[UUID, frozenset[str]]:
        invalid = Unauthorized("the API key is not valid (unknown, malformed or revoked)")
        if not presented.startswith(_PREFIX):
            raise invalid
        key_hex, _, secret = presented[len(_PREFIX) :].partition("_")
        try:
            key_id = UUID(hex=key_hex)
        except ValueError:
            raise invalid from None
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_Q["get_api_key_for_check"], key_id)
            if row is None or row["revoked_at"] is not None:
                raise invalid
            if not hmac.compare_digest(row["secret_hash"], _hash(secret)):
                raise invalid
            await conn.execute(_Q["touch_api_key"], key_id)
        return key_id, frozenset(row["scopes"])


def require_scope(scopes: frozenset[str], needed: Scope) -> None:
    if needed not in scopes and "admin" not in scopes:
        raise Forbidden(f"this API key lacks the `{needed}` scope")
