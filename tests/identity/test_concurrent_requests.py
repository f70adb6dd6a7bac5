"""Identity under concurrent HTTP requests: a real `unify serve` with two workers, many requests in flight at once.

The test client of the other scenarios runs one request at a time; here first contacts race each other across
processes, and a manual merge and its undo race ingest on both sides. Nothing acknowledged may be lost, and the
constraints and locks in PostgreSQL must leave one customer per person."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.events import native_event
from tests.server import unify_env, unify_serve
from unify.auth import create_key

EMAIL = "ada@example.com"
PHONE = "+14155550100"


def ident(kind: str, value: str, verification: str = "unverified") -> dict[str, str]:
    return {"kind": kind, "value": value, "verification": verification}


def event(external_id: str, channel: str, *identifiers: dict[str, str]) -> dict[str, Any]:
    return native_event(
        external_id, channel=channel, customer={"identifiers": list(identifiers)}, details={"type": channel}
    )


@pytest.fixture
def served(database_url: str) -> Iterator[str]:
    env = unify_env(DATABASE_URL=database_url, UNIFY_WORKERS="2", UNIFY_PURGE_INTERVAL_SECONDS="0")
    with unify_serve(env) as (base, _):
        yield base


async def test_concurrent_first_contacts_and_a_merge_and_undo_racing_ingest_over_http(
    served: str, db: asyncpg.Connection
) -> None:
    ingest_key, _ = await create_key(db, "desktop", ["ingest", "context:read"])
    admin_key, _ = await create_key(db, "supervisor", ["admin"])
    auth = {"Authorization": f"Bearer {ingest_key}"}
    admin = {"Authorization": f"Bearer {admin_key}"}
    sent: list[str] = []

    async with httpx.AsyncClient(base_url=served, timeout=30, limits=httpx.Limits(max_connections=32)) as http:

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            sent.append(body["external_id"])
            response = await http.post("/v1/interactions", json=body, headers=auth)
            assert response.status_code in (200, 201), response.text
            return response.json()

        # Sixteen first contacts carrying the same never-seen address, at the same moment: one customer.
        firsts = await asyncio.gather(*(post(event(f"first-{n}", "chat", ident("email", EMAIL))) for n in range(16)))
        assert len({r["customer_id"] for r in firsts}) == 1
        a = firsts[0]["customer_id"]
        b = (await post(event("other-0", "voice", ident("phone", PHONE))))["customer_id"]
        assert b != a

        # A supervisor merges the two while contacts keep arriving on both sides, some bringing new identifiers.
        def side_events(prefix: str) -> list[dict[str, Any]]:
            return [
                *(
                    event(f"{prefix}-a-{n}", "chat", ident("email", EMAIL), ident("chat", f"web:{prefix}{n}"))
                    for n in range(6)
                ),
                *(event(f"{prefix}-b-{n}", "sms", ident("phone", PHONE)) for n in range(6)),
            ]

        async def merge() -> dict[str, Any]:
            response = await http.post(
                f"/v1/customers/{a}/merge", json={"customer_id": b, "reason": "caller confirmed both"}, headers=admin
            )
            assert response.status_code == 200, response.text
            return response.json()["merge"]

        merged, *_ = await asyncio.gather(merge(), *(post(e) for e in side_events("during-merge")))
        roots = await db.fetch("select distinct interaction_customer(id) as c from interaction")
        assert [str(r["c"]) for r in roots] == [a]

        async def undo() -> None:
            response = await http.post(f"/v1/merges/{merged['id']}/undo", json={"reason": "wrong"}, headers=admin)
            assert response.status_code == 200, response.text

        await asyncio.gather(undo(), *(post(e) for e in side_events("during-undo")))

    # Every acknowledged event is stored once, and each belongs to the side of the identifiers it came with.
    stored = await db.fetch("select external_id, interaction_customer(id)::text as customer from interaction")
    assert sorted(r["external_id"] for r in stored) == sorted(sent)
    by_side = {r["external_id"]: r["customer"] for r in stored}
    assert {c for x, c in by_side.items() if x.startswith("first-") or "-a-" in x} == {a}
    assert {c for x, c in by_side.items() if x.startswith("other-") or "-b-" in x} == {b}
    assert await db.fetchval("select count(*) from customer") == 2
    assert await db.fetchval("select count(*) from identifier where customer_id is null") == 0
