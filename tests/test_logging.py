"""Logs a machine can read: one JSON line per request with the ids that matter, never bodies or identifiers."""

from __future__ import annotations

import json

import pytest
from litestar.testing import AsyncTestClient

from tests.events import native_event


async def test_one_canonical_json_line_per_request_without_personal_data(
    capfd: pytest.CaptureFixture[str], client: AsyncTestClient, auth: dict[str, str]
) -> None:
    # capfd comes first so that the app's logger is configured onto the captured stderr.
    capfd.readouterr()
    event = native_event(text="my card is 4111 and my bill is wrong")
    response = await client.post("/v1/interactions", json=event, headers={**auth, "X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    [request] = [line for line in lines if line["event"] == "request"]
    assert request["request_id"] == "req-42"
    assert (request["method"], request["route"], request["status"]) == ("POST", "/v1/interactions", 201)
    assert request["interaction_id"] == response.json()["interaction_id"]
    assert isinstance(request["duration_ms"], float)
    everything = json.dumps(lines)
    for secret in ("4155550100", "415-555-0100", "my bill is wrong", "Ada Lovelace", auth["Authorization"][7:]):
        assert secret not in everything


async def test_a_request_id_is_made_when_none_is_sent(client: AsyncTestClient) -> None:
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
