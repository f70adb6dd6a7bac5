"""Bad input: each case gets a clear 4xx problem naming what was wrong, and the raw body is kept with its error."""

from __future__ import annotations

import json

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.events import native_event
from tests.raw import open_raw


async def _raw(db: asyncpg.Connection, raw_event_id: int) -> asyncpg.Record:
    row = await db.fetchrow("select * from raw_event where id = $1", raw_event_id)
    assert row is not None, "the rejected body was not kept"
    return row


def _problem(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/problem+json")
    return json.loads(response.text)


def _with(**changes: object) -> bytes:
    return json.dumps(native_event(**changes)).encode()


def _without(field: str) -> bytes:
    event = native_event()
    del event[field]
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param(b'{"source": "native", "external_id": ', "$", "malformed", id="malformed-json"),
        pytest.param(b"", "$", "empty", id="empty-body"),
        pytest.param(_with(transfer_count="two"), "$.transfer_count", "Expected `int`", id="wrong-type"),
        pytest.param(_without("occurred_at"), "$.occurred_at", "missing required field", id="missing-field"),
        pytest.param(_with(channel="fax"), "$.channel", "Invalid enum value 'fax'", id="unknown-channel"),
        pytest.param(_with(occurred_at="2026-11-02T09:30:00"), "$.occurred_at", "timezone", id="naive-time"),
        pytest.param(_with(channel="sms"), "$.details", "do not match channel", id="details-mismatch"),
        pytest.param(_with(text="card\x00number"), "$.text", "NUL", id="nul-character"),
        pytest.param(b"\xff\xfe{}", "$", "malformed", id="invalid-utf8"),
    ],
)
async def test_invalid_body_is_400_naming_the_field_and_kept(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, body: bytes, field: str, message: str
) -> None:
    response = await client.post("/v1/interactions", content=body, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    problem = _problem(response)
    assert problem["status"] == 400
    assert any(e["field"] == field and message.lower() in e["message"].lower() for e in problem["errors"]), problem
    raw = await _raw(db, problem["raw_event_id"])
    assert open_raw(raw) == body
    assert raw["status"] == "rejected"
    assert raw["error"]["errors"] == problem["errors"]
    assert await db.fetchval("select count(*) from interaction") == 0


async def test_batch_names_each_invalid_element(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    batch = [native_event("ok-1"), native_event("bad-1", direction="sideways"), native_event("ok-2"), {"x": 1}]
    response = await client.post("/v1/interactions", json=batch, headers=auth)
    assert response.status_code == 400
    fields = [e["field"] for e in _problem(response)["errors"]]
    assert fields == ["$[1].direction", "$[3].x"]
    # All or nothing: the valid elements were not applied either, and the whole body is kept.
    assert await db.fetchval("select count(*) from interaction") == 0
    assert await db.fetchval("select status from raw_event") == "rejected"


async def test_oversized_body_is_413_and_its_start_kept(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    body = json.dumps(native_event(text="x" * 100_000)).encode()  # the test settings allow 65,536 bytes
    response = await client.post("/v1/interactions", content=body, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 413
    problem = _problem(response)
    assert "65536" in problem["detail"]
    raw = await _raw(db, problem["raw_event_id"])
    assert raw["truncated"] is True
    assert raw["body_size"] == len(body)
    assert open_raw(raw) == body[:65_536]


async def test_wrong_content_type_is_415_and_kept(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    body = b"From=%2B14155550100&Body=hello"
    response = await client.post(
        "/v1/interactions", content=body, headers={**auth, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    problem = _problem(response)
    assert problem["errors"][0]["field"] == "content-type"
    raw = await _raw(db, problem["raw_event_id"])
    assert open_raw(raw) == body
    assert raw["content_type"] == "application/x-www-form-urlencoded"


async def test_batch_over_the_limit_is_rejected(client: AsyncTestClient, auth: dict[str, str]) -> None:
    batch = [native_event(f"e-{i}") for i in range(1001)]
    response = await client.post("/v1/interactions", json=batch, headers=auth)
    assert response.status_code in (400, 413)
    assert "1000" in _problem(response)["detail"] or response.status_code == 413


async def test_credentials_are_not_kept_with_the_raw_body(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    await client.post("/v1/interactions", json=native_event(), headers=auth)
    headers = await db.fetchval("select headers from raw_event")
    names = {name.lower() for name, _ in headers}
    assert "content-type" in names
    assert "authorization" not in names


def test_connector_events_are_held_to_the_schema_limits_and_nul_rule() -> None:
    import msgspec

    from schemas import InteractionEvent
    from unify.errors import BadRequest
    from unify.ingest import validate_event

    event = msgspec.convert(native_event(text="card\x00number"), InteractionEvent)
    with pytest.raises(BadRequest) as nul:
        validate_event(event)
    assert nul.value.errors[0].field == "$.text"
    too_long = msgspec.structs.replace(event, text=None, agent="a" * 600)
    with pytest.raises(BadRequest) as long:
        validate_event(too_long)
    assert long.value.errors[0].field == "$.agent"
    fine = msgspec.structs.replace(event, text="fine")
    assert validate_event(fine) == fine
