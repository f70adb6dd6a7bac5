"""Phone connectors through the real route into PostgreSQL: twilio-voice, amazon-connect, cdr-csv."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from connectors._twilio import twilio_signature
from tests.webhooks.helpers import configure, interactions, post_webhook, public_url, raw_events

FIXTURES = Path(__file__).parents[1] / "fixtures"
TOKEN = "f2c7a1e0b9d84c3e8a6b5d4c3b2a1f0e"
CONNECT_AUTH = "connect:s3cret-pass"
PBX_AUTH = "pbx:upload-key"
OUTBOUND_SID = "CAbe982f58915a2def4cf7aaa1f1766236"


def _fixture(connector: str, name: str) -> bytes:
    return (FIXTURES / connector / name).read_bytes()


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


async def _identifiers(db: asyncpg.Connection) -> list[tuple[str, str, str]]:
    rows = await db.fetch("select kind, value, verification from identifier order by kind, value")
    return [(r["kind"], r["value"], r["verification"]) for r in rows]


# ---------------------------------------------------------------------------------------------------------------
# twilio-voice


async def _post_twilio(client: AsyncTestClient, body: bytes, url: str | None = None) -> httpx.Response:
    signature = twilio_signature(
        TOKEN, url or public_url("twilio-voice"), parse_qsl(body.decode(), keep_blank_values=True)
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return await post_webhook(client, "twilio-voice", body, headers)


@pytest.mark.parametrize(
    "order",
    [
        ("completed", "ringing", "initiated", "in-progress"),
        ("in-progress", "completed", "initiated", "ringing"),
        ("initiated", "ringing", "in-progress", "completed"),
    ],
)
async def test_twilio_callbacks_in_any_order_fold_into_one_completed_call(
    client: AsyncTestClient, db: asyncpg.Connection, order: tuple[str, ...]
) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    for status in order:
        response = await _post_twilio(client, _fixture("twilio-voice", f"outbound-{status}.txt"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [row] = await interactions(db, "twilio-voice")
    assert (row["external_id"], row["channel"], row["direction"]) == (OUTBOUND_SID, "voice", "outbound")
    assert (row["status"], row["revision"], row["talk_seconds"]) == ("completed", 4, 147)
    assert row["occurred_at"] == datetime(2026, 11, 3, 15, 0, 0, tzinfo=UTC)  # the first callback's Timestamp
    assert row["answered_at"] == datetime(2026, 11, 3, 15, 0, 9, tzinfo=UTC)
    assert row["ended_at"] == datetime(2026, 11, 3, 15, 2, 36, tzinfo=UTC)
    assert row["identified"] is True
    assert await _identifiers(db) == [("phone", "+14155550199", "unverified")]


async def test_twilio_incoming_call_then_its_final_callback(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    assert (await _post_twilio(client, _fixture("twilio-voice", "incoming-call.txt"))).status_code == 200
    assert (await _post_twilio(client, _fixture("twilio-voice", "incoming-completed.txt"))).status_code == 200
    [row] = await interactions(db, "twilio-voice")
    assert (row["direction"], row["status"], row["talk_seconds"]) == ("inbound", "completed", 184)
    assert row["event"]["customer"]["display_name"] == "DOE JANE"
    assert row["event"]["details"]["stir_verstat"] == "TN-Validation-Passed-A"
    assert await _identifiers(db) == [("phone", "+14155550123", "carrier_attested")]


async def test_twilio_same_callback_twice_creates_nothing_new(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    body = _fixture("twilio-voice", "outbound-ringing.txt")
    assert (await _post_twilio(client, body)).status_code == 200
    before = await interactions(db, "twilio-voice")
    assert (await _post_twilio(client, body)).status_code == 200
    assert await interactions(db, "twilio-voice") == before
    assert len(before) == 1
    assert [r["status"] for r in await raw_events(db, "twilio-voice")] == ["processed", "processed"]


async def test_twilio_wrong_signature_is_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    body = _fixture("twilio-voice", "incoming-call.txt")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    }
    response = await post_webhook(client, "twilio-voice", body, headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "x-twilio-signature"
    [raw] = await raw_events(db, "twilio-voice")
    assert (raw["status"], bytes(raw["body"])) == ("unverified", body)
    assert await interactions(db, "twilio-voice") == []


async def test_twilio_signature_is_over_the_public_url_not_the_internal_host(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    body = _fixture("twilio-voice", "incoming-call.txt")
    internal = await _post_twilio(client, body, url="http://testserver.local/v1/webhooks/twilio-voice")
    assert internal.status_code == 401
    assert (await _post_twilio(client, body)).status_code == 200


async def test_twilio_anonymous_caller_is_not_identified(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    assert (await _post_twilio(client, _fixture("twilio-voice", "anonymous-caller.txt"))).status_code == 200
    [row] = await interactions(db, "twilio-voice")
    assert (row["status"], row["identified"]) == ("ringing", False)
    assert await _identifiers(db) == []


async def test_twilio_malformed_callback_is_400_naming_the_field(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "twilio-voice", secret=TOKEN)
    fields = dict(parse_qsl(_fixture("twilio-voice", "outbound-completed.txt").decode()))
    fields["SequenceNumber"] = "third"
    response = await _post_twilio(client, urlencode(fields).encode())
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "SequenceNumber"
    assert [r["status"] for r in await raw_events(db, "twilio-voice")] == ["rejected"]
    assert await interactions(db, "twilio-voice") == []


# ---------------------------------------------------------------------------------------------------------------
# amazon-connect


async def _post_connect(client: AsyncTestClient, body: bytes, credentials: str = CONNECT_AUTH) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Authorization": _basic(credentials)}
    return await post_webhook(client, "amazon-connect", body, headers)


@pytest.mark.parametrize("older_first", [False, True])
async def test_connect_older_redelivery_never_overwrites_the_newer_record(
    client: AsyncTestClient, db: asyncpg.Connection, older_first: bool
) -> None:
    await configure(db, "amazon-connect", basic_auth=CONNECT_AUTH)
    newer, older = (
        _fixture("amazon-connect", "inbound-voice.json"),
        _fixture("amazon-connect", "inbound-voice-older.json"),
    )
    for body in (older, newer) if older_first else (newer, older):
        response = await _post_connect(client, body)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    [row] = await interactions(db, "amazon-connect")
    assert row["external_id"] == "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47"
    assert row["revision"] == int(datetime(2026, 11, 3, 17, 48, 35, tzinfo=UTC).timestamp() * 1000)
    assert row["event"]["attributes"]["wrapUp"] == "billing-resolved"
    assert row["event"]["details"]["recording_url"].startswith("s3://amazon-connect-b278e465e71c/")
    assert (row["status"], row["agent"], row["queue"]) == ("completed", "jane.agent", "Billing")
    assert (row["queue_wait_seconds"], row["hold_seconds"], row["talk_seconds"]) == (346, 221, 1375)


async def test_connect_list_of_records_in_one_request(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "amazon-connect", basic_auth=CONNECT_AUTH)
    body = _fixture("amazon-connect", "batch.json")
    assert (await _post_connect(client, body)).status_code == 200
    rows = await interactions(db, "amazon-connect")
    assert [(r["external_id"][:8], r["channel"], r["direction"], r["status"]) for r in rows] == [
        ("0b9f1c0e", "voice", "inbound", "abandoned"),
        ("9a3e2b7c", "voice", "outbound", "no_answer"),
        ("c4f2a8e1", "chat", "inbound", "completed"),
        ("5d4c3b2a", "email", "inbound", "completed"),
        ("7e6d5c4b", "voice", "inbound", "completed"),
    ]
    assert rows[-1]["transfer_count"] == 1
    assert ("email", "jane.roe@example.com", "unverified") in await _identifiers(db)
    # delivered again: nothing new
    assert (await _post_connect(client, body)).status_code == 200
    assert await interactions(db, "amazon-connect") == rows


async def test_connect_wrong_credentials_are_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "amazon-connect", basic_auth=CONNECT_AUTH)
    response = await _post_connect(client, _fixture("amazon-connect", "inbound-voice.json"), "connect:guess")
    assert response.status_code == 401
    assert [r["status"] for r in await raw_events(db, "amazon-connect")] == ["unverified"]
    assert await interactions(db, "amazon-connect") == []


async def test_connect_malformed_record_is_400_naming_the_field(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "amazon-connect", basic_auth=CONNECT_AUTH)
    records = json.loads(_fixture("amazon-connect", "batch.json"))
    del records[2]["ContactId"]
    response = await _post_connect(client, json.dumps(records).encode())
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "$[2].ContactId"
    assert [r["status"] for r in await raw_events(db, "amazon-connect")] == ["rejected"]
    assert await interactions(db, "amazon-connect") == []


# ---------------------------------------------------------------------------------------------------------------
# cdr-csv


async def _upload(client: AsyncTestClient, body: bytes, query: str = "", credentials: str = PBX_AUTH) -> httpx.Response:
    headers = {"Content-Type": "text/csv", "Authorization": _basic(credentials)}
    return await post_webhook(client, "cdr-csv", body, headers, query=query)


async def test_cdr_asterisk_file(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    assert (await _upload(client, _fixture("cdr-csv", "asterisk-Master.csv"))).status_code == 200
    rows = await interactions(db, "cdr-csv")
    assert [(r["external_id"], r["direction"], r["status"], r["talk_seconds"]) for r in rows] == [
        ("1762161302.18", "inbound", "completed", 202),
        ("1762161640.20", "inbound", "no_answer", None),
        ("1762162200.22", "outbound", "completed", 168),
        ("1762162800.24", "internal", "busy", None),
        ("1762163400.26", "inbound", "no_answer", None),
    ]
    assert rows[0]["occurred_at"] == datetime(2026, 11, 3, 9, 15, 2, tzinfo=UTC)
    assert [r["identified"] for r in rows] == [True, True, True, False, False]
    assert await _identifiers(db) == [
        ("phone", "+14155550123", "unverified"),
        ("phone", "+14155550177", "unverified"),
        ("phone", "+14155550199", "unverified"),
    ]


async def test_cdr_freeswitch_file_uploaded_twice_creates_nothing_new(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    body = _fixture("cdr-csv", "freeswitch-Master.csv")
    assert (await _upload(client, body)).status_code == 200
    rows = await interactions(db, "cdr-csv")
    assert [(r["external_id"][:8], r["direction"], r["status"]) for r in rows] == [
        ("a5c9f6c0", "inbound", "completed"),
        ("e29ff0ae", "inbound", "abandoned"),
        ("e2fe712e", "outbound", "busy"),
        ("e34619ac", "internal", "completed"),
    ]
    assert rows[0]["answered_at"] == datetime(2026, 11, 3, 10, 0, 6, tzinfo=UTC)
    assert (await _upload(client, body)).status_code == 200
    assert await interactions(db, "cdr-csv") == rows
    assert [r["status"] for r in await raw_events(db, "cdr-csv")] == ["processed", "processed"]


async def test_cdr_tz_parameter_shifts_occurred_at(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    response = await _upload(client, _fixture("cdr-csv", "asterisk-Master.csv"), query="tz=Europe/Berlin")
    assert response.status_code == 200
    rows = await interactions(db, "cdr-csv")
    assert rows[0]["occurred_at"] == datetime(2026, 11, 3, 8, 15, 2, tzinfo=UTC)  # 09:15:02 CET
    assert rows[0]["ended_at"] == datetime(2026, 11, 3, 8, 18, 31, tzinfo=UTC)


async def test_cdr_wrong_credentials_are_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    response = await _upload(client, _fixture("cdr-csv", "asterisk-Master.csv"), credentials="pbx:nope")
    assert response.status_code == 401
    assert [r["status"] for r in await raw_events(db, "cdr-csv")] == ["unverified"]
    assert await interactions(db, "cdr-csv") == []


async def test_cdr_bad_row_is_400_naming_row_and_column(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "cdr-csv", basic_auth=PBX_AUTH)
    body = _fixture("cdr-csv", "asterisk-Master.csv").replace(b"2026-11-03 09:20:40", b"yesterday")
    response = await _upload(client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "row 2, column start"
    assert [r["status"] for r in await raw_events(db, "cdr-csv")] == ["rejected"]
    assert await interactions(db, "cdr-csv") == []
