"""`POST /v1/interactions` and `GET /v1/interactions/{id}` against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

from schemas import InteractionEvent
from tests.events import native_event
from unify.ingest import IngestOptions, RawDelivery, ingest_events
from unify.store import open_pool


async def test_single_event_is_stored_and_read_back(client: AsyncTestClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/interactions", json=native_event(), headers=auth)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["outcome"] == "created"
    assert result["customer_id"]

    read = await client.get(f"/v1/interactions/{result['interaction_id']}", headers=auth)
    assert read.status_code == 200
    body = read.json()
    assert body["customer_id"] == result["customer_id"]
    assert body["identified"] is True
    event = body["event"]
    assert event["external_id"] == "call-1001"
    assert event["channel"] == "voice"
    assert event["hold_seconds"] == 40
    assert event["details"] == {"type": "voice", "stir_verstat": "TN-Validation-Passed-A", "number_of_holds": 1}
    # Stored in UTC, the instant unchanged.
    assert datetime.fromisoformat(event["occurred_at"]) == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)

    customer = (await client.get(f"/v1/customers/{result['customer_id']}", headers=auth)).json()
    assert customer["display_name"] == "Ada Lovelace"
    [identifier] = customer["identifiers"]
    assert (identifier["kind"], identifier["value"]) == ("phone", "+14155550100")
    assert identifier["verification"] == "carrier_attested"
    assert identifier["link_rule"] == "first-contact"
    assert identifier["linked_by_interaction"] == result["interaction_id"]


async def test_same_key_twice_is_a_duplicate(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    first = (await client.post("/v1/interactions", json=native_event(), headers=auth)).json()
    again = await client.post("/v1/interactions", json=native_event(), headers=auth)
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["interaction_id"] == first["interaction_id"]
    assert await db.fetchval("select count(*) from interaction") == 1
    assert await db.fetchval("select count(*) from customer") == 1
    # Both deliveries are kept raw.
    assert await db.fetchval("select count(*) from raw_event where status = 'processed'") == 2


async def test_same_batch_twice_creates_nothing_new(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    batch = [
        native_event("call-1"),
        native_event("sms-1", channel="sms", details={"type": "sms", "segments": 1}, text="my bill is wrong"),
        native_event(
            "mail-1",
            channel="email",
            customer={"identifiers": [{"kind": "email", "value": "Ada <ADA@Example.com>"}]},
            details={"type": "email", "message_id": "<m1@example.com>"},
        ),
    ]
    first = await client.post("/v1/interactions", json=batch, headers=auth)
    assert first.status_code == 200, first.text
    assert [r["outcome"] for r in first.json()["results"]] == ["created"] * 3
    second = await client.post("/v1/interactions", json=batch, headers=auth)
    body = second.json()
    assert (body["created"], body["duplicates"]) == (0, 3)
    assert [r["interaction_id"] for r in body["results"]] == [r["interaction_id"] for r in first.json()["results"]]
    assert await db.fetchval("select count(*) from interaction") == 3
    # Same phone in call and SMS → one customer; the email is a different, unlinked person so far.
    assert await db.fetchval("select count(*) from customer") == 2
    assert await db.fetchval("select value from identifier where kind = 'email'") == "ada@example.com"


async def test_higher_revision_updates_lower_is_ignored(client: AsyncTestClient, auth: dict[str, str]) -> None:
    ringing = native_event(status="ringing", revision=1, answered_at=None, ended_at=None, talk_seconds=None)
    completed = native_event(status="completed", revision=3, disposition="resolved")
    created = (await client.post("/v1/interactions", json=completed, headers=auth)).json()
    late = (await client.post("/v1/interactions", json=ringing, headers=auth)).json()
    assert late["outcome"] == "duplicate"
    event = (await client.get(f"/v1/interactions/{created['interaction_id']}", headers=auth)).json()["event"]
    assert (event["status"], event["revision"], event["disposition"]) == ("completed", 3, "resolved")

    wrapped_up = native_event(status="completed", revision=4, reason="refund", disposition=None)
    updated = (await client.post("/v1/interactions", json=wrapped_up, headers=auth)).json()
    assert updated["outcome"] == "updated"
    event = (await client.get(f"/v1/interactions/{created['interaction_id']}", headers=auth)).json()["event"]
    assert (event["revision"], event["reason"], event["disposition"]) == (4, "refund", "resolved")


async def test_anonymous_caller_is_stored_unidentified(client: AsyncTestClient, auth: dict[str, str]) -> None:
    event = native_event(customer={"identifiers": [{"kind": "phone", "value": "anonymous"}]})
    result = (await client.post("/v1/interactions", json=event, headers=auth)).json()
    assert result["outcome"] == "created"
    assert "customer_id" not in result or result["customer_id"] is None
    body = (await client.get(f"/v1/interactions/{result['interaction_id']}", headers=auth)).json()
    assert body["identified"] is False and body["customer_id"] is None


async def test_formatting_variants_of_one_number_link_one_customer(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    variants = ["+1 415-555-0100", "(415) 555 0100", "tel:+14155550100", "whatsapp:+14155550100"]
    customers = set()
    for index, value in enumerate(variants):
        event = native_event(f"call-{index}", customer={"identifiers": [{"kind": "phone", "value": value}]})
        customers.add((await client.post("/v1/interactions", json=event, headers=auth)).json()["customer_id"])
    assert len(customers) == 1
    assert await db.fetchval("select count(*) from identifier") == 1


async def test_concurrent_first_contacts_make_one_customer(database_url: str, db: asyncpg.Connection) -> None:
    # The test client runs requests one after another, so this drives the ingest path itself with a real pool: twelve
    # deliveries of the same new number, each on its own connection, at the same moment.
    events = [
        msgspec.convert(native_event(f"chat-{i}", channel="chat", details={"type": "chat"}), InteractionEvent)
        for i in range(12)
    ]
    pool = await open_pool(database_url, min_size=12, max_size=12)
    try:
        results = await asyncio.gather(
            *(
                ingest_events(
                    pool, RawDelivery("native", "application/json", [], b"{}", 2), [event], options=IngestOptions()
                )
                for event in events
            )
        )
    finally:
        await pool.close()
    assert {r.results[0].outcome for r in results} == {"created"}
    assert len({r.results[0].customer_id for r in results}) == 1
    assert await db.fetchval("select count(*) from customer") == 1
    assert await db.fetchval("select count(*) from identifier") == 1


async def test_unknown_interaction_is_404_problem(client: AsyncTestClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/interactions/01890a5d-ac96-774b-bcce-b302099a8057", headers=auth)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert json.loads(response.text)["title"] == "Not found"


async def test_lower_revision_only_fills_what_is_missing(client: AsyncTestClient, auth: dict[str, str]) -> None:
    completed = native_event(status="completed", revision=3, answered_at=None, agent=None)
    in_progress = native_event(status="in_progress", revision=2, agent="agent.kim", ended_at=None, talk_seconds=None)
    created = (await client.post("/v1/interactions", json=completed, headers=auth)).json()
    late = (await client.post("/v1/interactions", json=in_progress, headers=auth)).json()
    assert late["outcome"] == "updated"
    event = (await client.get(f"/v1/interactions/{created['interaction_id']}", headers=auth)).json()["event"]
    assert (event["status"], event["revision"], event["agent"]) == ("completed", 3, "agent.kim")
    assert event["ended_at"] and event["talk_seconds"] == 465
    again = (await client.post("/v1/interactions", json=in_progress, headers=auth)).json()
    assert again["outcome"] == "duplicate"
