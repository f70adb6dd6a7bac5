"""Sunshine Conversations v2: the X-API-Key secret, several events per request, one interaction per message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.chat.sunshine import connector
from schemas import Attachment, ChatDetails, Identifier

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sunshine-conversations"
SECRET = "8564b3e6a8b20a4bdb68b05ce9bc5936"
SETTINGS = ConnectorSettings(secret=SECRET)


def _request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://unify.example.com/v1/webhooks/sunshine-conversations",
        headers={"content-type": "application/json", **(headers or {})},
        body=body,
        received_at=datetime(2026, 3, 4, 10, 16, tzinfo=UTC),
    )


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _parse(body: bytes) -> list[Any]:
    return connector.parse(_request(body), SETTINGS).events


def test_verify_compares_the_api_key_header_with_the_webhook_secret() -> None:
    body = _fixture("message-anonymous.json")
    connector.verify(_request(body, {"x-api-key": SECRET}), SETTINGS)
    for headers in ({}, {"x-api-key": "8564b3e6a8b20a4bdb68b05ce9bc5937"}, {"authorization": f"Bearer {SECRET}"}):
        with pytest.raises(SignatureError) as caught:
            connector.verify(_request(body, headers), SETTINGS)
        assert caught.value.field == "x-api-key"
    with pytest.raises(SignatureError, match="webhook secret"):
        connector.verify(_request(body, {"x-api-key": SECRET}), ConnectorSettings())


def test_an_anonymous_web_user() -> None:
    [event] = _parse(_fixture("message-anonymous.json"))
    assert (event.source, event.external_id, event.channel) == (
        "sunshine-conversations",
        "5e55622dac66fb73a3c01877",
        "chat",
    )
    assert (event.direction, event.status, event.text) == ("inbound", "received", "Hello world")
    assert event.occurred_at == datetime(2026, 2, 25, 18, 6, 37, 547000, tzinfo=UTC)
    assert event.thread_key == "sunshine-conversations:13f32c6cf7d0d38e6e0eba93"
    assert event.customer.identifiers == [
        Identifier(kind="chat", value="sunshine-conversations:cbec0073faeda4dfcd21d0f1", verification="unverified")
    ]
    assert event.customer.display_name is None  # "Web User <id>" is Sunshine's placeholder, not a name
    assert event.endpoint is not None and event.endpoint.value == "sunshine-conversations:5698edbf2a43bd081be982f1"
    assert event.attributes == {
        "source_type": "web",
        "integration_id": "5e554d2cac66fb73a3c01871",
        "content_type": "text",
    }
    assert event.details == ChatDetails(
        platform="sunshine-conversations",
        conversation_id="13f32c6cf7d0d38e6e0eba93",
        visitor_id="cbec0073faeda4dfcd21d0f1",
        author_type="customer",
    )


def test_several_events_in_one_request_one_interaction_per_message() -> None:
    customer, bot = _parse(_fixture("events-batch.json"))  # create and read events skipped, repeated message once
    assert (customer.external_id, customer.direction) == ("64f1c0a2b7e3d90012a4e0aa", "inbound")
    assert customer.customer.identifiers == [
        Identifier(kind="account", value="cust-10293", verification="authenticated"),
        Identifier(kind="chat", value="sunshine-conversations:64f1bf77a91c2e0013b7c551", verification="unverified"),
        Identifier(kind="email", value="dana.reyes@example.com", verification="unverified"),
    ]
    assert customer.customer.display_name == "Dana Reyes"
    assert (bot.external_id, bot.direction, bot.status, bot.agent) == (
        "64f1c0b6b7e3d90012a4e0c3",
        "outbound",
        "sent",
        "Acme Assistant",
    )
    assert isinstance(bot.details, ChatDetails) and bot.details.author_type == "bot"
    assert bot.customer.identifiers == []
    assert {customer.thread_key, bot.thread_key} == {"sunshine-conversations:64f1c0a2b7e3d90012a4d9f0"}


def test_a_redelivered_message_keeps_its_key_and_media_is_an_attachment() -> None:
    [first, _] = _parse(_fixture("events-batch.json"))
    again, image = _parse(_fixture("message-redelivered.json"))
    assert (again.external_id, again.text, again.occurred_at) == (first.external_id, first.text, first.occurred_at)
    assert image.text == "Shipping label"
    assert image.attachments == [
        Attachment(
            content_type="image/jpeg",
            size_bytes=48213,
            url="https://media.smooch.io/apps/5698edbf2a43bd081be982f1/conversations/64f1c0a2b7e3d90012a4d9f0/label.jpg",
        )
    ]


def test_a_business_agent_without_ai_subtype_is_an_agent() -> None:
    body = json.loads(_fixture("events-batch.json"))
    del body["events"][2]["payload"]["message"]["author"]["subtypes"]
    _, agent = _parse(json.dumps(body).encode())
    assert isinstance(agent.details, ChatDetails) and agent.details.author_type == "agent"


def _with_message(**message: object) -> bytes:
    body = json.loads(_fixture("message-anonymous.json"))
    body["events"][0]["payload"]["message"].update(message)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "$"),
        (b"[1, 2", "$"),
        (b'{"app": {"id": "a"}}', "$.events"),
        (b'{"events": [{"type": "conversation:message"}]}', "$.events[0].id"),
        (b'{"events": [{"id": "e1", "type": "conversation:message"}]}', "$.events[0].payload"),
        (
            b'{"webhook": {"version": "v1.1"}, "events": []}',
            "$.webhook.version",
        ),
        (_with_message(id=None), "$.events[0].payload.message.id"),
        (_with_message(received="last tuesday"), "$.events[0].payload.message.received"),
        (_with_message(author={"type": "robot"}), "$.events[0].payload.message.author.type"),
        (_with_message(content={"text": "no type"}), "$.events[0].payload.message.content.type"),
        (_with_message(id="x" * 600), "$.events[0].payload.message.id"),
    ],
)
def test_refusals_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _parse(body)
    assert caught.value.field == field


def test_other_triggers_only_give_no_events() -> None:
    body = json.loads(_fixture("events-batch.json"))
    body["events"] = [body["events"][0], body["events"][3]]
    assert _parse(json.dumps(body).encode()) == []
