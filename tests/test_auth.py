"""API keys: missing or bad key → 401, wrong scope → 403; keys are stored hashed and can be revoked."""

from __future__ import annotations

import asyncpg
from litestar.testing import AsyncTestClient

from tests.events import native_event
from unify.auth import create_key, revoke_key


async def test_missing_key_is_401(client: AsyncTestClient) -> None:
    response = await client.post("/v1/interactions", json=native_event())
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in response.json()["detail"]


async def test_bad_keys_are_401(client: AsyncTestClient, api_key: str) -> None:
    tampered = api_key[:-2] + ("aa" if not api_key.endswith("aa") else "bb")
    for presented in ("nonsense", "uk_zz_zz", tampered):
        response = await client.get(
            "/v1/interactions/01890a5d-ac96-774b-bcce-b302099a8057", headers={"X-API-Key": presented}
        )
        assert response.status_code == 401, presented


async def test_wrong_scope_is_403(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    reader, _ = await create_key(db, "desk", ["context:read"])
    response = await client.post("/v1/interactions", json=native_event(), headers={"X-API-Key": reader})
    assert response.status_code == 403
    assert "`ingest`" in response.json()["detail"]


async def test_admin_scope_may_do_everything(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    admin, _ = await create_key(db, "ops", ["admin"])
    response = await client.post("/v1/interactions", json=native_event(), headers={"Authorization": f"Bearer {admin}"})
    assert response.status_code == 201


async def test_keys_are_stored_hashed(db: asyncpg.Connection) -> None:
    key, record = await create_key(db, "hash-check", ["ingest"])
    secret = key.rsplit("_", 1)[1]
    stored = await db.fetchval("select secret_hash from api_key where id = $1", record.id)
    assert secret.encode() not in bytes(stored)
    assert len(stored) == 32


async def test_revoked_key_is_401(client: AsyncTestClient, settings, db: asyncpg.Connection) -> None:  # type: ignore[no-untyped-def]
    key, record = await create_key(db, "leaving", ["ingest"])
    await revoke_key(db, record.id)
    response = await client.post("/v1/interactions", json=native_event(), headers={"X-API-Key": key})
    assert response.status_code == 401


async def test_health_needs_no_key(client: AsyncTestClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["migrations_applied"] == ready["migrations_known"] >= 1


async def test_openapi_is_public_and_documents_the_ingest_body(client: AsyncTestClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    body = document["paths"]["/v1/interactions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/InteractionEvent"} in body["oneOf"]


async def test_unknown_route_is_a_problem(client: AsyncTestClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
