"""The webhook route's own mechanics, with a small test connector: 404, 401 kept unverified, 400 kept rejected,
replay tokens, split messages reassembled once, and the public URL used for signatures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import ClassVar

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from connectors import registry
from connectors._base import (
    ConnectorSettings,
    Fragment,
    Parsed,
    PayloadError,
    Reply,
    SignatureError,
    WebhookRequest,
)
from schemas import CustomerParty, Identifier, InteractionEvent, SmsDetails
from tests.webhooks.helpers import configure, post_webhook, public_url, raw_events


class EchoConnector:
    """Signature: X-Echo-Signature must equal the secret + the URL the platform called."""

    name: ClassVar[str] = "echo"
    channel: ClassVar[str] = "sms"
    reply: ClassVar[Reply] = Reply(200, "text/plain", b"thanks")

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        if request.header("x-echo-signature") != f"{settings.secret}|{request.url}":
            raise SignatureError("bad echo signature", field="x-echo-signature")

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        try:
            body = json.loads(request.body)
            event = InteractionEvent(
                source="echo",
                external_id=body["id"],
                channel="sms",
                direction="inbound",
                occurred_at=datetime(2026, 11, 2, 12, tzinfo=UTC),
                customer=CustomerParty(identifiers=[Identifier(kind="phone", value=body["from"])]),
                text=body["text"],
                details=SmsDetails(),
            )
        except (KeyError, ValueError) as exc:
            raise PayloadError(f"bad echo body: {exc}", field="$.id") from None
        if "part" in body:
            return Parsed(
                fragments=[Fragment(group=body["ref"], index=body["part"], total=3, text=body["text"], event=event)]
            )
        return Parsed(events=[event], replay_token=body.get("token"))

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        import msgspec

        first = fragments[0].event
        return msgspec.structs.replace(
            first, external_id=f"msg-{first.external_id}", text="".join(f.text for f in fragments)
        )


@pytest.fixture(autouse=True)
def echo_connector() -> Iterator[None]:
    registry._MODULES["echo"] = "unused"
    registry._loaded["echo"] = EchoConnector()  # type: ignore[assignment]
    yield
    registry._MODULES.pop("echo")
    registry._loaded.pop("echo")


def _headers(url: str = public_url("echo")) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Echo-Signature": f"s3cret|{url}"}


def _body(**values: object) -> bytes:
    return json.dumps({"id": "m1", "from": "+14155550100", "text": "hi", **values}).encode()


async def test_unknown_connector_is_404(client: AsyncTestClient) -> None:
    response = await client.post("/v1/webhooks/fax-machine", content=b"x")
    assert response.status_code == 404
    assert "fax-machine" in response.json()["detail"]


async def test_valid_delivery_gets_the_platform_reply_and_is_stored(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "echo", secret="s3cret")
    response = await post_webhook(client, "echo", _body(), _headers())
    assert (response.status_code, response.text, response.headers["content-type"]) == (
        200,
        "thanks",
        "text/plain; charset=utf-8",
    )
    again = await post_webhook(client, "echo", _body(), _headers())
    assert again.status_code == 200
    assert await db.fetchval("select count(*) from interaction where source = 'echo'") == 1
    assert [r["status"] for r in await raw_events(db, "echo")] == ["processed", "processed"]


async def test_signature_uses_the_public_url_not_the_host_it_arrived_at(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "echo", secret="s3cret")
    internal = await post_webhook(client, "echo", _body(), _headers("http://testserver.local/v1/webhooks/echo"))
    assert internal.status_code == 401
    public = await post_webhook(client, "echo", _body(), _headers())
    assert public.status_code == 200


async def test_bad_signature_is_401_and_kept_unverified(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "echo", secret="s3cret")
    response = await post_webhook(
        client, "echo", _body(), {"Content-Type": "application/json", "X-Echo-Signature": "no"}
    )
    assert response.status_code == 401
    problem = response.json()
    assert problem["errors"][0]["field"] == "x-echo-signature"
    [raw] = await raw_events(db, "echo")
    assert (raw["id"], raw["status"], bytes(raw["body"])) == (problem["raw_event_id"], "unverified", _body())
    assert await db.fetchval("select count(*) from interaction") == 0


async def test_unparseable_body_is_400_naming_the_field_and_kept(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "echo", secret="s3cret")
    response = await post_webhook(client, "echo", b'{"text": "no id"}', _headers())
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "$.id"
    [raw] = await raw_events(db, "echo")
    assert raw["status"] == "rejected"


async def test_replayed_token_is_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "echo", secret="s3cret")
    assert (await post_webhook(client, "echo", _body(token="t-1"), _headers())).status_code == 200
    replay = await post_webhook(client, "echo", _body(token="t-1"), _headers())
    assert replay.status_code == 401
    assert "replayed" in replay.json()["detail"]
    assert [r["status"] for r in await raw_events(db, "echo")] == ["processed", "unverified"]


async def test_split_message_is_assembled_once_whatever_the_order(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await configure(db, "echo", secret="s3cret")
    parts = {1: "Hello, my ", 2: "bill is ", 3: "wrong."}
    for index in (3, 1, 2, 2):
        response = await post_webhook(
            client, "echo", _body(id=f"p{index}", part=index, ref="r9", text=parts[index]), _headers()
        )
        assert response.status_code == 200
    rows = await db.fetch("select external_id, event from interaction where source = 'echo'")
    assert [(r["external_id"], r["event"]["text"]) for r in rows] == [("msg-p1", "Hello, my bill is wrong.")]

    # The sender reuses the reference for a new message: a part with another id starts the group afresh.
    for index, text in ((2, "is "), (1, "This "), (3, "new.")):
        await post_webhook(client, "echo", _body(id=f"n{index}", part=index, ref="r9", text=text), _headers())
    rows = await db.fetch("select external_id, event from interaction where source = 'echo' order by external_id")
    assert [(r["external_id"], r["event"]["text"]) for r in rows] == [
        ("msg-n1", "This is new."),
        ("msg-p1", "Hello, my bill is wrong."),
    ]


async def test_unconfigured_connector_cannot_verify(client: AsyncTestClient) -> None:
    response = await post_webhook(client, "echo", _body(), _headers())
    assert response.status_code == 401
