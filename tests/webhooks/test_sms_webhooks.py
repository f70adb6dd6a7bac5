"""Twilio and Vonage SMS webhooks through the real route into PostgreSQL: normalized rows, duplicates, signatures,
malformed bodies, out-of-order status callbacks, and concatenated SMS reassembled once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from litestar.testing import AsyncTestClient

from connectors._twilio import twilio_signature
from connectors.sms.vonage_sms import vonage_signature
from tests.webhooks.helpers import configure, get_webhook, interactions, post_webhook, public_url, raw_events

FIXTURES = Path(__file__).parent.parent / "fixtures"
TWILIO_TOKEN = "9f2c6e1b4a7d8c3e5f0a1b2c3d4e5f60"
VONAGE_SECRET = "Vy2Xn5bQk0zS4tW8hJ1mC7pR3dL6fG9aE4uT"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def identifiers(db: asyncpg.Connection) -> list[tuple[str, str, str, bool]]:
    rows = await db.fetch("select kind, value, verification, customer_id from identifier order by kind, value")
    return [(r["kind"], r["value"], r["verification"], r["customer_id"] is not None) for r in rows]


def event_of(row: dict[str, Any]) -> dict[str, Any]:
    event = row["event"]
    return json.loads(event) if isinstance(event, str) else event


# --- Twilio ----------------------------------------------------------------------------------------------------


def twilio_body(name: str, **changes: str) -> bytes:
    fields = dict(parse_qsl((FIXTURES / "twilio-sms" / name).read_text(), keep_blank_values=True))
    return urlencode(fields | changes).encode()


def twilio_headers(body: bytes, *, token: str = TWILIO_TOKEN) -> dict[str, str]:
    params = parse_qsl(body.decode(), keep_blank_values=True)
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": twilio_signature(token, public_url("twilio-sms"), params),
    }


async def post_twilio(client: AsyncTestClient, body: bytes, **kwargs: str) -> Any:
    return await post_webhook(client, "twilio-sms", body, twilio_headers(body, **kwargs))


async def test_twilio_incoming_sms_is_stored_normalized(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    response = await post_twilio(client, twilio_body("incoming-sms.txt"))
    assert response.status_code == 200, response.text
    assert response.content == TWIML and response.headers["content-type"].startswith("text/xml")
    [row] = await interactions(db, "twilio-sms")
    assert (row["external_id"], row["channel"], row["direction"], row["status"], row["revision"]) == (
        "SM3f8a2c1d9b7e4a6f8c0d2e4f6a8b0c1d",
        "sms",
        "inbound",
        "received",
        0,
    )
    event = event_of(row)
    assert event["text"] == "Hi, my order #58213 never arrived. Can someone call me back?"
    assert event["details"] == {"type": "sms", "segments": 1}  # transport "sms" is the default, so not stored
    assert event["endpoint"] == {"kind": "phone", "value": "+14155550100"}
    assert await identifiers(db) == [("phone", "+14155550123", "unverified", True)]
    assert row["identified"] is True


async def test_twilio_whatsapp_and_mms(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    for name in ("incoming-whatsapp.txt", "incoming-mms.txt"):
        assert (await post_twilio(client, twilio_body(name))).status_code == 200
    rows = {r["external_id"]: event_of(r) for r in await interactions(db, "twilio-sms")}
    whatsapp = rows["SMa4c6e8f0b2d4f6a8c0e2b4d6f8a0c2e4"]
    assert whatsapp["details"]["transport"] == "whatsapp"
    assert whatsapp["customer"]["display_name"] == "María García"
    mms = rows["MM8b1e5d3c7a9f2e4d6b8a0c2e4f6d8b0a"]
    assert mms["details"] == {"type": "sms", "transport": "mms", "segments": 1, "media_count": 2}
    assert [a["content_type"] for a in mms["attachments"]] == ["image/jpeg", "application/pdf"]
    # `whatsapp:+34600555012` is normalized like any other number.
    assert ("phone", "+34600555012", "unverified", True) in await identifiers(db)
    assert ("phone", "+12125550187", "unverified", True) in await identifiers(db)


async def test_twilio_duplicate_delivery_creates_nothing(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    body = twilio_body("incoming-sms.txt")
    assert (await post_twilio(client, body)).status_code == 200
    first = await interactions(db, "twilio-sms")
    assert (await post_twilio(client, body)).status_code == 200
    assert await interactions(db, "twilio-sms") == first
    assert [r["status"] for r in await raw_events(db, "twilio-sms")] == ["processed", "processed"]
    assert await db.fetchval("select count(*) from customer") == 1


async def test_twilio_wrong_signature_is_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    body = twilio_body("incoming-sms.txt")
    response = await post_twilio(client, body, token="not-the-auth-token")
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "x-twilio-signature"
    [raw] = await raw_events(db, "twilio-sms")
    assert (raw["status"], bytes(raw["body"])) == ("unverified", body)
    assert await interactions(db, "twilio-sms") == []


async def test_twilio_malformed_body_is_400_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    body = twilio_body("incoming-mms.txt", NumMedia="3")  # signed, but MediaUrl2 is not there
    response = await post_twilio(client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "MediaUrl2"
    [raw] = await raw_events(db, "twilio-sms")
    assert (raw["status"], bytes(raw["body"])) == ("rejected", body)
    assert await interactions(db, "twilio-sms") == []


async def test_twilio_status_callbacks_out_of_order_end_on_the_last_state(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    assert (await post_twilio(client, twilio_body("status-delivered.txt"))).status_code == 200
    assert (await post_twilio(client, twilio_body("status-sent.txt"))).status_code == 200  # late
    [row] = await interactions(db, "twilio-sms")
    assert (row["direction"], row["status"], row["revision"]) == ("outbound", "delivered", 6)
    assert event_of(row)["attributes"]["message_status"] == "delivered"
    assert await identifiers(db) == [("phone", "+14155550123", "unverified", True)]
    undelivered = await post_twilio(client, twilio_body("status-undelivered.txt"))
    assert undelivered.status_code == 200
    rows = {r["external_id"]: r for r in await interactions(db, "twilio-sms")}
    assert rows["SMd2f4a6c8e0b2d4f6a8c0e2f4a6c8e0b2"]["status"] == "undelivered"
    assert event_of(rows["SMd2f4a6c8e0b2d4f6a8c0e2f4a6c8e0b2"])["attributes"]["error_code"] == "30003"


# --- Vonage ----------------------------------------------------------------------------------------------------


def vonage_params(name: str, method: str = "md5hash", **changes: str) -> dict[str, str]:
    """A fixture's parameters, signed again now (a signed timestamp must be fresh)."""
    raw = (FIXTURES / "vonage-sms" / name).read_text()
    params = json.loads(raw) if name.endswith(".json") else dict(parse_qsl(raw, keep_blank_values=True))
    params = {k: v for k, v in params.items() if k != "sig"} | {"timestamp": str(int(time.time()))} | changes
    return params | {"sig": vonage_signature(params, VONAGE_SECRET, method)}


FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Nexmo/MessagingHUB/v1.0"}


async def post_vonage(client: AsyncTestClient, params: dict[str, str]) -> Any:
    return await post_webhook(client, "vonage-sms", urlencode(params).encode(), FORM)


async def test_vonage_form_delivery_is_stored_normalized(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET)
    response = await post_vonage(client, vonage_params("inbound-signed.txt"))
    assert response.status_code == 200, response.text
    [row] = await interactions(db, "vonage-sms")
    assert (row["external_id"], row["channel"], row["direction"], row["status"]) == (
        "0A0000001F3C2B7E",
        "sms",
        "inbound",
        "received",
    )
    assert row["occurred_at"].isoformat() == "2024-03-15T14:24:00+00:00"
    event = event_of(row)
    assert event["text"] == "Hello, is my appointment on Friday still confirmed?"
    assert event["details"] == {"type": "sms", "keyword": "HELLO,"}
    assert event["endpoint"] == {"kind": "phone", "value": "+447700900000"}
    assert await identifiers(db) == [("phone", "+447700900123", "unverified", True)]


async def test_vonage_json_delivery_with_hmac_sha256(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET, signature_method="sha256")
    params = vonage_params("inbound-signed-sha256.json", "sha256")
    params["sig"] = params["sig"].upper()
    headers = {"Content-Type": "application/json", "User-Agent": "Nexmo/MessagingHUB/v1.0"}
    response = await post_webhook(client, "vonage-sms", json.dumps(params).encode(), headers)
    assert response.status_code == 200, response.text
    [row] = await interactions(db, "vonage-sms")
    assert row["external_id"] == "0A0000001F3C2B7E"


async def test_vonage_get_query_delivery(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET)
    response = await get_webhook(client, "vonage-sms", urlencode(vonage_params("inbound-unicode-query.txt")))
    assert response.status_code == 200, response.text
    [row] = await interactions(db, "vonage-sms")
    assert row["external_id"] == "0B000000A7D41E92"
    assert event_of(row)["text"] == "Bonjour, le colis n°4821 est arrivé abîmé 😞"
    assert await identifiers(db) == [("phone", "+33612345678", "unverified", True)]
    [raw] = await raw_events(db, "vonage-sms")
    assert raw["status"] == "processed"


async def test_vonage_duplicate_delivery_creates_nothing(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET)
    params = vonage_params("inbound-signed.txt")
    assert (await post_vonage(client, params)).status_code == 200
    first = await interactions(db, "vonage-sms")
    # Vonage retries until it gets a 200: the same message, signed again later.
    assert (await post_vonage(client, vonage_params("inbound-signed.txt", nonce="b7c1d2e3"))).status_code == 200
    assert await interactions(db, "vonage-sms") == first
    assert [r["status"] for r in await raw_events(db, "vonage-sms")] == ["processed", "processed"]


async def test_vonage_wrong_or_stale_signature_is_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET)
    wrong = vonage_params("inbound-signed.txt") | {"text": "Please cancel my appointment"}
    response = await post_vonage(client, wrong)
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "sig"
    stale = vonage_params("inbound-signed.txt", timestamp="1710512640")
    response = await post_vonage(client, stale)
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "timestamp"
    raws = await raw_events(db, "vonage-sms")
    assert [r["status"] for r in raws] == ["unverified", "unverified"]
    assert bytes(raws[0]["body"]) == urlencode(wrong).encode()
    assert await interactions(db, "vonage-sms") == []


async def test_vonage_malformed_body_is_400_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET)
    params = {k: v for k, v in vonage_params("inbound-signed.txt").items() if k not in ("msisdn", "sig")}
    params["sig"] = vonage_signature(params, VONAGE_SECRET)
    response = await post_vonage(client, params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "msisdn"
    [raw] = await raw_events(db, "vonage-sms")
    assert raw["status"] == "rejected"
    assert await interactions(db, "vonage-sms") == []


async def test_vonage_concatenated_parts_out_of_order_make_one_message(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "vonage-sms", secret=VONAGE_SECRET)
    for part in (3, 1):
        response = await post_vonage(client, vonage_params(f"inbound-concat-part{part}.txt"))
        assert response.status_code == 200, response.text
        assert await interactions(db, "vonage-sms") == []
    assert (await post_vonage(client, vonage_params("inbound-concat-part2.txt"))).status_code == 200
    [row] = await interactions(db, "vonage-sms")
    full_text = (FIXTURES / "vonage-sms" / "concat-full-text.txt").read_text()
    event = event_of(row)
    assert event["text"] == full_text
    assert row["external_id"] == "0C00000012AB34C1"
    assert row["occurred_at"].isoformat() == "2024-03-15T15:02:11+00:00"
    assert event["details"] == {"type": "sms", "segments": 3, "keyword": "HI,"}
    assert await identifiers(db) == [("phone", "+14155550147", "unverified", True)]

    # Vonage re-delivers a part it thinks we missed: nothing new.
    assert (await post_vonage(client, vonage_params("inbound-concat-part2.txt", nonce="c9d8"))).status_code == 200
    assert (await post_vonage(client, vonage_params("inbound-concat-part1.txt", nonce="d0e1"))).status_code == 200
    [again] = await interactions(db, "vonage-sms")
    assert again == row
    assert [r["status"] for r in await raw_events(db, "vonage-sms")] == ["processed"] * 5
