"""Chat webhooks through the real route into PostgreSQL: `chat`, `intercom`, `sunshine-conversations`, `chatwoot`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from tests.webhooks.helpers import configure, interactions, post_webhook, raw_events

FIXTURES = Path(__file__).parent.parent / "fixtures"
JSON = {"Content-Type": "application/json"}


def _fixture(folder: str, name: str) -> bytes:
    return (FIXTURES / folder / name).read_bytes()


async def _identifiers(db: asyncpg.Connection, source: str, external_id: str) -> list[tuple[str, str, str]]:
    """(kind, normalized value, verification as seen on this interaction)."""
    rows = await db.fetch(
        """select i.kind, i.value, ii.verification
             from interaction x
             join interaction_identifier ii on ii.interaction_id = x.id
             join identifier i on i.id = ii.identifier_id
            where x.source = $1 and x.external_id = $2
            order by i.kind, i.value""",
        source,
        external_id,
    )
    return [(r["kind"], r["value"], r["verification"]) for r in rows]


async def _customer_of(db: asyncpg.Connection, kind: str, value: str) -> Any:
    return await db.fetchval("select customer_id from identifier where kind = $1 and value = $2", kind, value)


# --- chat (unify's own format) -----------------------------------------------------------------------------------

CHAT_SECRET = "whsec_5b0b1c7e9d"


def _chat_headers(body: bytes, secret: str = CHAT_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {**JSON, "X-Unify-Timestamp": timestamp, "X-Unify-Signature": f"v1={digest}"}


async def test_chat_message_is_stored_once(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "chat", secret=CHAT_SECRET)
    body = _fixture("chat", "message.json")
    response = await post_webhook(client, "chat", body, _chat_headers(body))
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    again = await post_webhook(client, "chat", body, _chat_headers(body))
    assert again.status_code == 200
    [row] = await interactions(db, "chat")
    assert (row["external_id"], row["channel"], row["direction"], row["status"]) == (
        "livechat-acme:m-40017",
        "chat",
        "inbound",
        "received",
    )
    assert (row["thread_key"], row["queue"], row["identified"]) == ("livechat-acme:c-8812", "Delivery", True)
    assert row["event"]["text"] == "Hi, my parcel never arrived."
    assert await _identifiers(db, "chat", "livechat-acme:m-40017") == [
        ("account", "cust-10293", "authenticated"),
        ("chat", "livechat-acme:v-5f2c", "unverified"),
        ("email", "dana.reyes@example.com", "unverified"),
        ("phone", "+14155550123", "unverified"),
    ]
    assert [r["status"] for r in await raw_events(db, "chat")] == ["processed", "processed"]


async def test_chat_batch_wrong_signature_and_malformed(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "chat", secret=CHAT_SECRET)
    body = _fixture("chat", "batch.json")
    forged = await post_webhook(client, "chat", body, _chat_headers(body, secret="guess"))
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["field"] == "x-unify-signature"
    bad = b'[{"conversation_id": "s-1", "message_id": "1", "sent_at": "yesterday", "author": "customer"}]'
    rejected = await post_webhook(client, "chat", bad, _chat_headers(bad))
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["field"] == "$[0].sent_at"
    assert await interactions(db, "chat") == []
    assert (await post_webhook(client, "chat", body, _chat_headers(body))).status_code == 200
    rows = await interactions(db, "chat")
    assert [(r["external_id"], r["direction"], r["agent"]) for r in rows] == [
        ("chat:1001", "inbound", None),
        ("chat:1002", "outbound", "ShipBot"),
        ("chat:1003", "outbound", "Kari Nordmann"),
    ]
    assert [r["status"] for r in await raw_events(db, "chat")] == ["unverified", "rejected", "processed"]


# --- Intercom ----------------------------------------------------------------------------------------------------

INTERCOM_SECRET = "6c1b9e0a-2f4d-4e8b-9a7c-3d5e1f0b2a48"


def _intercom_headers(body: bytes, secret: str = INTERCOM_SECRET) -> dict[str, str]:
    signature = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {**JSON, "X-Hub-Signature": signature, "User-Agent": "intercom-parrot-service-rb"}


async def test_intercom_conversation(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "intercom", secret=INTERCOM_SECRET)
    for name in ("ping.json", "conversation.user.created.json", "conversation.admin.replied.json"):
        body = _fixture("intercom", name)
        assert (await post_webhook(client, "intercom", body, _intercom_headers(body))).status_code == 200
    replied = _fixture("intercom", "conversation.admin.replied.json")
    assert (await post_webhook(client, "intercom", replied, _intercom_headers(replied))).status_code == 200
    rows = await interactions(db, "intercom")
    assert [(r["external_id"], r["direction"], r["status"], r["agent"]) for r in rows] == [
        ("2130281753", "inbound", "received", None),
        ("19478564213", "outbound", "sent", "Sam Ortega"),
    ]
    assert {r["thread_key"] for r in rows} == {"intercom:215467329461234"}
    assert rows[1]["event"]["text"].startswith("Hi Dana,\nthanks for flagging this")
    assert await _identifiers(db, "intercom", "2130281753") == [
        ("account", "cust-10293", "authenticated"),
        ("chat", "intercom:6630f0e85e3fbf1e1b41a0d4", "unverified"),
        ("email", "dana.reyes@example.com", "unverified"),
    ]
    assert len(await raw_events(db, "intercom")) == 4


async def test_intercom_anonymous_lead(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "intercom", secret=INTERCOM_SECRET)
    body = _fixture("intercom", "conversation.user.replied.v1.json")
    assert (await post_webhook(client, "intercom", body, _intercom_headers(body))).status_code == 200
    rows = await interactions(db, "intercom")
    assert [r["external_id"] for r in rows] == ["2130292087", "19478603377"]  # the internal note is not a message
    assert await _identifiers(db, "intercom", "19478603377") == [
        ("chat", "intercom:6631022a9b1c4e0f5d8a7e21", "unverified")
    ]


async def test_intercom_refusals_are_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "intercom", secret=INTERCOM_SECRET)
    body = _fixture("intercom", "conversation.user.created.json")
    forged = await post_webhook(client, "intercom", body, _intercom_headers(body, secret="guess"))
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["field"] == "x-hub-signature"
    broken = body.replace(b'"id": "215467329461234"', b'"id": null')
    rejected = await post_webhook(client, "intercom", broken, _intercom_headers(broken))
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["field"] == "$.data.item.id"
    assert await interactions(db, "intercom") == []
    assert [r["status"] for r in await raw_events(db, "intercom")] == ["unverified", "rejected"]


# --- Sunshine Conversations ----------------------------------------------------------------------------------------

SUNSHINE_SECRET = "8564b3e6a8b20a4bdb68b05ce9bc5936"
SUNSHINE = "sunshine-conversations"


def _sunshine_headers(secret: str = SUNSHINE_SECRET) -> dict[str, str]:
    return {**JSON, "X-API-Key": secret, "User-Agent": "Sunshine Conversations Webhooks"}


async def test_sunshine_several_events_and_redelivery(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, SUNSHINE, secret=SUNSHINE_SECRET)
    batch = _fixture(SUNSHINE, "events-batch.json")
    assert (await post_webhook(client, SUNSHINE, batch, _sunshine_headers())).status_code == 200
    assert len(await interactions(db, SUNSHINE)) == 2
    redelivered = _fixture(SUNSHINE, "message-redelivered.json")
    assert (await post_webhook(client, SUNSHINE, redelivered, _sunshine_headers())).status_code == 200
    assert (await post_webhook(client, SUNSHINE, batch, _sunshine_headers())).status_code == 200
    rows = await interactions(db, SUNSHINE)
    assert [(r["external_id"], r["direction"]) for r in rows] == [
        ("64f1c0a2b7e3d90012a4e0aa", "inbound"),
        ("64f1c0b6b7e3d90012a4e0c3", "outbound"),
        ("64f1c0d4b7e3d90012a4e0f9", "inbound"),
    ]
    assert rows[1]["agent"] == "Acme Assistant"
    assert rows[2]["event"]["attachments"][0]["content_type"] == "image/jpeg"
    assert {r["thread_key"] for r in rows} == {"sunshine-conversations:64f1c0a2b7e3d90012a4d9f0"}
    raws = await raw_events(db, SUNSHINE)
    assert [r["status"] for r in raws] == ["processed"] * 3
    assert all(name.lower() != "x-api-key" for r in raws for name, _ in r["headers"])  # the secret is never kept


async def test_sunshine_authenticated_user_and_anonymous_visitor(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, SUNSHINE, secret=SUNSHINE_SECRET)
    for name in ("events-batch.json", "message-anonymous.json"):
        assert (await post_webhook(client, SUNSHINE, _fixture(SUNSHINE, name), _sunshine_headers())).status_code == 200
    assert await _identifiers(db, SUNSHINE, "64f1c0a2b7e3d90012a4e0aa") == [
        ("account", "cust-10293", "authenticated"),
        ("chat", "sunshine-conversations:64f1bf77a91c2e0013b7c551", "unverified"),
        ("email", "dana.reyes@example.com", "unverified"),
    ]
    assert await _identifiers(db, SUNSHINE, "5e55622dac66fb73a3c01877") == [
        ("chat", "sunshine-conversations:cbec0073faeda4dfcd21d0f1", "unverified")
    ]
    anonymous, dana = (
        await _customer_of(db, "chat", "sunshine-conversations:cbec0073faeda4dfcd21d0f1"),
        await _customer_of(db, "account", "cust-10293"),
    )
    assert anonymous is not None and dana is not None and anonymous != dana


async def test_sunshine_refusals_are_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, SUNSHINE, secret=SUNSHINE_SECRET)
    body = _fixture(SUNSHINE, "message-anonymous.json")
    forged = await post_webhook(client, SUNSHINE, body, _sunshine_headers("0" * 32))
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["field"] == "x-api-key"
    broken = body.replace(b'"received": "2026-02-25T18:06:37.547Z"', b'"received": 1582653997')
    rejected = await post_webhook(client, SUNSHINE, broken, _sunshine_headers())
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["field"] == "$.events[0].payload.message.received"
    assert await interactions(db, SUNSHINE) == []
    assert [r["status"] for r in await raw_events(db, SUNSHINE)] == ["unverified", "rejected"]


# --- Chatwoot ------------------------------------------------------------------------------------------------------

CHATWOOT_SECRET = "jJ5mT2xQ9vW1kLp8"


def _chatwoot_headers(body: bytes, secret: str = CHATWOOT_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        **JSON,
        "X-Chatwoot-Timestamp": timestamp,
        "X-Chatwoot-Signature": f"sha256={digest}",
        "X-Chatwoot-Delivery": "5d0f6a8e-3c1b-4f2a-9e7d-1b2c3d4e5f60",
    }


async def test_chatwoot_conversation(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "chatwoot", secret=CHATWOOT_SECRET)
    for name in (
        "message_created-incoming.json",
        "message_created-incoming.json",
        "message_created-outgoing.json",
        "message_created-private-note.json",
        "message_updated-outgoing.json",
        "message_created-outgoing.json",  # late retry of the first version: the edit stays
        "conversation_status_changed.json",
    ):
        body = _fixture("chatwoot", name)
        assert (await post_webhook(client, "chatwoot", body, _chatwoot_headers(body))).status_code == 200, name
    rows = await interactions(db, "chatwoot")
    assert [(r["external_id"], r["direction"], r["agent"], r["queue"]) for r in rows] == [
        ("41877", "inbound", None, None),
        ("41879", "outbound", "Sam Ortega", "Delivery"),
    ]
    assert rows[1]["event"]["text"].endswith("expect an update within the hour.")
    assert rows[1]["revision"] == 1714641522904
    assert {r["thread_key"] for r in rows} == {"chatwoot:1:312"}
    assert await _identifiers(db, "chatwoot", "41877") == [
        ("account", "cust-10293", "authenticated"),
        ("chat", "chatwoot:c2f9e4a1-7d3b-4e62-9a5f-0b8d1c6e2f47", "unverified"),
        ("email", "dana.reyes@example.com", "unverified"),
        ("phone", "+14155550123", "unverified"),
    ]


async def test_chatwoot_refusals_are_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "chatwoot", secret=CHATWOOT_SECRET)
    body = _fixture("chatwoot", "message_created-anonymous.json")
    forged = await post_webhook(client, "chatwoot", body, _chatwoot_headers(body, secret="guess"))
    assert forged.status_code == 401
    assert forged.json()["errors"][0]["field"] == "x-chatwoot-signature"
    broken = body.replace(b'"created_at": "2024-05-02T10:02:11.530Z"', b'"created_at": "soon"')
    rejected = await post_webhook(client, "chatwoot", broken, _chatwoot_headers(broken))
    assert rejected.status_code == 400
    assert rejected.json()["errors"][0]["field"] == "$.created_at"
    assert await interactions(db, "chatwoot") == []
    assert [r["status"] for r in await raw_events(db, "chatwoot")] == ["unverified", "rejected"]


async def test_chatwoot_unsigned_webhook_with_basic_auth(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "chatwoot", basic_auth="chatwoot:s3cret-pass")
    body = _fixture("chatwoot", "message_created-anonymous.json")
    wrong = {**JSON, "Authorization": "Basic " + base64.b64encode(b"chatwoot:guess").decode()}
    assert (await post_webhook(client, "chatwoot", body, wrong)).status_code == 401
    basic = {**JSON, "Authorization": "Basic " + base64.b64encode(b"chatwoot:s3cret-pass").decode()}
    assert (await post_webhook(client, "chatwoot", body, basic)).status_code == 200
    rows = await interactions(db, "chatwoot")
    assert [(r["external_id"], r["thread_key"], r["identified"]) for r in rows] == [("41901", "chatwoot:1:318", True)]
    assert await _identifiers(db, "chatwoot", "41901") == [
        ("chat", "chatwoot:7a01c5e3-52f8-4b1e-8e0d-93c4af61d2b8", "unverified")
    ]
    assert [r["status"] for r in await raw_events(db, "chatwoot")] == ["unverified", "processed"]


async def test_an_authenticated_id_links_the_same_customer_across_platforms(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "intercom", secret=INTERCOM_SECRET)
    await configure(db, "chatwoot", secret=CHATWOOT_SECRET)
    intercom = _fixture("intercom", "conversation.user.created.json")
    chatwoot = _fixture("chatwoot", "message_created-incoming.json")
    assert (await post_webhook(client, "intercom", intercom, _intercom_headers(intercom))).status_code == 200
    assert (await post_webhook(client, "chatwoot", chatwoot, _chatwoot_headers(chatwoot))).status_code == 200
    customer = await _customer_of(db, "account", "cust-10293")
    assert customer is not None
    assert await _customer_of(db, "chat", "intercom:6630f0e85e3fbf1e1b41a0d4") == customer
    assert await _customer_of(db, "chat", "chatwoot:c2f9e4a1-7d3b-4e62-9a5f-0b8d1c6e2f47") == customer
