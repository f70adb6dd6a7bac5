"""Chatwoot: signed (X-Chatwoot-Signature) or basic-auth webhooks, message events, identity validation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.chat.chatwoot import chatwoot_signature, connector
from schemas import ChatDetails, Identifier

FIXTURES = Path(__file__).parent.parent / "fixtures" / "chatwoot"
SECRET = "jJ5mT2xQ9vW1kLp8"
NOW = datetime(2024, 5, 2, 9, 14, 5, tzinfo=UTC)
SIGNED = ConnectorSettings(secret=SECRET)


def _request(body: bytes, headers: dict[str, str] | None = None, received_at: datetime = NOW) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://unify.example.com/v1/webhooks/chatwoot",
        headers={"content-type": "application/json", **(headers or {})},
        body=body,
        received_at=received_at,
    )


def _signed(body: bytes, timestamp: int = int(NOW.timestamp()), secret: str = SECRET) -> dict[str, str]:
    return {
        "x-chatwoot-timestamp": str(timestamp),
        "x-chatwoot-signature": chatwoot_signature(secret, str(timestamp), body),
        "x-chatwoot-delivery": "5d0f6a8e-3c1b-4f2a-9e7d-1b2c3d4e5f60",
    }


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _parse(body: bytes) -> list[Any]:
    return connector.parse(_request(body), SIGNED).events


def test_signature_vector() -> None:
    # sha256= + hex HMAC-SHA256(secret, "<timestamp>.<body>")
    expected = "sha256=07f0967e33a9e218b0564f3da0c556c46224ece3483f466e8d99c215644c2bb3"
    assert chatwoot_signature("secret", "1714641245", b'{"event":"message_created"}') == expected


def test_verify_a_signed_webhook() -> None:
    body = _fixture("message_created-incoming.json")
    connector.verify(_request(body, _signed(body)), SIGNED)


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({}, "x-chatwoot-signature"),
        ({"x-chatwoot-signature": "sha256=00"}, "x-chatwoot-timestamp"),
        ({"x-chatwoot-timestamp": "1714641245", "x-chatwoot-signature": "sha256=00"}, "x-chatwoot-signature"),
    ],
)
def test_verify_refuses_unsigned_or_wrongly_signed_requests(headers: dict[str, str], field: str) -> None:
    with pytest.raises(SignatureError) as caught:
        connector.verify(_request(b"{}", headers), SIGNED)
    assert caught.value.field == field


def test_verify_refuses_a_tampered_body_another_secret_and_a_stale_timestamp() -> None:
    body = _fixture("message_created-incoming.json")
    with pytest.raises(SignatureError):
        connector.verify(_request(body.replace(b"7781", b"7782"), _signed(body)), SIGNED)
    with pytest.raises(SignatureError):
        connector.verify(_request(body, _signed(body, secret="other")), SIGNED)
    with pytest.raises(SignatureError, match="stale") as caught:
        connector.verify(_request(body, _signed(body), received_at=NOW + timedelta(minutes=10)), SIGNED)
    assert caught.value.field == "x-chatwoot-timestamp"


def test_unsigned_webhooks_fall_back_to_basic_auth() -> None:
    settings = ConnectorSettings(basic_auth="chatwoot:s3cret-pass")
    good = {"authorization": "Basic " + base64.b64encode(b"chatwoot:s3cret-pass").decode()}
    connector.verify(_request(b"{}", good), settings)
    with pytest.raises(SignatureError) as caught:
        connector.verify(_request(b"{}", {"authorization": "Basic " + base64.b64encode(b"x:y").decode()}), settings)
    assert caught.value.field == "authorization"
    with pytest.raises(SignatureError, match="neither a secret"):
        connector.verify(_request(b"{}", good), ConnectorSettings())
    # With a secret configured, basic auth alone is not enough: the webhook must be signed.
    with pytest.raises(SignatureError):
        connector.verify(_request(b"{}", good), ConnectorSettings(secret=SECRET, basic_auth="chatwoot:s3cret-pass"))


def test_an_incoming_message_from_an_identity_validated_contact() -> None:
    [event] = _parse(_fixture("message_created-incoming.json"))
    assert (event.source, event.external_id, event.channel) == ("chatwoot", "41877", "chat")
    assert (event.direction, event.status) == ("inbound", "received")
    assert event.occurred_at == datetime(2024, 5, 2, 9, 14, 3, 207000, tzinfo=UTC)
    assert event.revision == 1714641243212
    assert event.thread_key == "chatwoot:1:312"
    assert event.text == "Hi! My order #7781 hasn't arrived yet."
    assert event.customer.display_name == "Dana Reyes"
    assert event.customer.identifiers == [
        Identifier(kind="account", value="cust-10293", verification="authenticated"),
        Identifier(kind="chat", value="chatwoot:c2f9e4a1-7d3b-4e62-9a5f-0b8d1c6e2f47", verification="unverified"),
        Identifier(kind="email", value="dana.reyes@example.com", verification="unverified"),
        Identifier(kind="phone", value="+14155550123", verification="unverified"),
    ]
    assert event.endpoint is not None and event.endpoint.value == "chatwoot:1:7"
    assert (event.agent, event.queue) == (None, None)
    assert event.attributes == {"inbox_name": "Website", "conversation_status": "open"}
    assert event.details == ChatDetails(
        platform="chatwoot",
        conversation_id="312",
        visitor_id="c2f9e4a1-7d3b-4e62-9a5f-0b8d1c6e2f47",
        author_type="customer",
    )


def test_an_anonymous_visitor_is_only_a_chat_handle() -> None:
    [event] = _parse(_fixture("message_created-anonymous.json"))
    assert event.customer.identifiers == [
        Identifier(kind="chat", value="chatwoot:7a01c5e3-52f8-4b1e-8e0d-93c4af61d2b8", verification="unverified")
    ]
    assert event.customer.display_name is None  # "summer-frost-381" is Chatwoot's made-up visitor name
    assert event.thread_key == "chatwoot:1:318"


def test_an_identifier_without_identity_validation_is_unverified() -> None:
    body = json.loads(_fixture("message_created-incoming.json"))
    body["conversation"]["meta"]["hmac_verified"] = False
    body["conversation"]["contact_inbox"]["hmac_verified"] = False
    [event] = _parse(json.dumps(body).encode())
    assert event.customer.identifiers[0] == Identifier(kind="account", value="cust-10293", verification="unverified")
    assert all(i.verification == "unverified" for i in event.customer.identifiers)


def test_an_agent_reply_and_its_later_edit() -> None:
    [reply] = _parse(_fixture("message_created-outgoing.json"))
    [edited] = _parse(_fixture("message_updated-outgoing.json"))
    assert (reply.external_id, reply.direction, reply.status) == ("41879", "outbound", "sent")
    assert (reply.agent, reply.queue) == ("Sam Ortega", "Delivery")
    assert isinstance(reply.details, ChatDetails) and reply.details.author_type == "agent"
    assert edited.external_id == reply.external_id and edited.revision > reply.revision
    assert edited.text == "Hi Dana, I'm checking with the carrier now - expect an update within the hour."


def test_a_bot_reply() -> None:
    body = json.loads(_fixture("message_created-outgoing.json"))
    body["sender"] = {"id": 4, "name": "Captain", "type": "agent_bot"}
    [event] = _parse(json.dumps(body).encode())
    assert isinstance(event.details, ChatDetails) and event.details.author_type == "bot"
    assert event.agent == "Captain"


@pytest.mark.parametrize("name", ["message_created-private-note.json", "conversation_status_changed.json"])
def test_notes_and_conversation_events_give_no_events(name: str) -> None:
    assert _parse(_fixture(name)) == []


@pytest.mark.parametrize("message_type", ["activity", "template", 2, 3])
def test_activity_and_template_messages_give_no_events(message_type: object) -> None:
    body = json.loads(_fixture("message_created-incoming.json"))
    body["message_type"] = message_type
    assert _parse(json.dumps(body).encode()) == []


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2024-05-02 09:14:03 UTC", datetime(2024, 5, 2, 9, 14, 3, tzinfo=UTC)),
        (1714641243, datetime(2024, 5, 2, 9, 14, 3, tzinfo=UTC)),
        ("1714641243", datetime(2024, 5, 2, 9, 14, 3, tzinfo=UTC)),
    ],
)
def test_older_timestamp_forms(created_at: object, expected: datetime) -> None:
    body = json.loads(_fixture("message_created-incoming.json"))
    body["created_at"] = created_at
    [event] = _parse(json.dumps(body).encode())
    assert event.occurred_at == expected


def test_a_top_level_contact_from_older_releases() -> None:
    body = json.loads(_fixture("message_created-incoming.json"))
    del body["conversation"]["meta"]
    body["sender"] = {"id": 2088, "name": "Dana Reyes", "avatar": "", "type": "contact"}
    body["contact"] = {"id": 2088, "name": "Dana Reyes", "email": "dana.reyes@example.com"}
    [event] = _parse(json.dumps(body).encode())
    assert event.customer.display_name == "Dana Reyes"
    assert Identifier(kind="email", value="dana.reyes@example.com") in event.customer.identifiers


def test_attachments() -> None:
    attachments = [
        {
            "id": 9,
            "file_type": "image",
            "data_url": "https://chat.acme.example/rails/active_storage/a.png",
            "file_size": 5120,
        },
        {
            "id": 10,
            "file_type": "file",
            "data_url": "https://chat.acme.example/rails/active_storage/b.pdf",
            "file_size": -1,
        },
        {"id": 11, "file_type": "location", "data_url": None},
    ]
    [event] = _parse(_with(content=None, attachments=attachments))
    assert (event.text, event.snippet) == (None, None)
    assert [(a.url, a.content_type, a.size_bytes) for a in event.attachments] == [
        ("https://chat.acme.example/rails/active_storage/a.png", "image", 5120),
        ("https://chat.acme.example/rails/active_storage/b.pdf", "file", None),
    ]


def _with(**fields: object) -> bytes:
    body = json.loads(_fixture("message_created-incoming.json"))
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "$"),
        (b"{'event': 'message_created'}", "$"),
        (b'{"id": 1}', "$.event"),
        (_with(id=None), "$.id"),
        (_with(conversation=None), "$.conversation"),
        (_with(created_at="the other day"), "$.created_at"),
        (_with(created_at=None), "$.created_at"),
        (_with(private="no"), "$.private"),
        (_with(conversation={"meta": {}}), "$.conversation.id"),
    ],
)
def test_refusals_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _parse(body)
    assert caught.value.field == field
