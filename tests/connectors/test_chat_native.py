"""unify's own chat format (route `chat`): the signed JSON, its fields, and every refusal naming its field."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.chat.native import ChatMessage, connector, decode_view, unify_signature
from schemas import ChatDetails, Identifier

FIXTURES = Path(__file__).parent.parent / "fixtures" / "chat"
SECRET = "whsec_5b0b1c7e9d"
NOW = datetime(2026, 3, 2, 14, 5, 30, tzinfo=UTC)
SETTINGS = ConnectorSettings(secret=SECRET)


def _request(body: bytes, headers: dict[str, str] | None = None, received_at: datetime = NOW) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://unify.example.com/v1/webhooks/chat",
        headers={"content-type": "application/json", **(headers or {})},
        body=body,
        received_at=received_at,
    )


def _signed(body: bytes, timestamp: int = int(NOW.timestamp()), secret: str = SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"x-unify-timestamp": str(timestamp), "x-unify-signature": f"v1={digest}"}


def test_signature_vector() -> None:
    body = b'{"message_id":"m-1"}'
    expected = "v1=3454a7594d5fb97c64c76bee0aa4c32d9d4f681941a27a66ec60229672fcf0d1"
    assert unify_signature(SECRET, "1772460330", body) == expected


def test_accepts_a_fresh_signed_request_and_a_rotated_secret() -> None:
    body = (FIXTURES / "message.json").read_bytes()
    connector.verify(_request(body, _signed(body)), SETTINGS)
    rotated = _signed(body, secret="old-secret")
    rotated["x-unify-signature"] += ", " + _signed(body)["x-unify-signature"]
    connector.verify(_request(body, rotated), SETTINGS)


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({}, "x-unify-timestamp"),
        ({"x-unify-timestamp": "yesterday", "x-unify-signature": "v1=00"}, "x-unify-timestamp"),
        ({"x-unify-timestamp": str(int(NOW.timestamp()))}, "x-unify-signature"),
        ({"x-unify-timestamp": str(int(NOW.timestamp())), "x-unify-signature": "v1=00"}, "x-unify-signature"),
    ],
)
def test_refuses_missing_or_wrong_signatures(headers: dict[str, str], field: str) -> None:
    with pytest.raises(SignatureError) as caught:
        connector.verify(_request(b"{}", headers), SETTINGS)
    assert caught.value.field == field


def test_refuses_a_tampered_body_a_stale_timestamp_and_a_missing_secret() -> None:
    body = (FIXTURES / "message.json").read_bytes()
    with pytest.raises(SignatureError):
        connector.verify(_request(body + b" ", _signed(body)), SETTINGS)
    with pytest.raises(SignatureError, match="stale") as caught:
        connector.verify(_request(body, _signed(body), received_at=NOW + timedelta(minutes=6)), SETTINGS)
    assert caught.value.field == "x-unify-timestamp"
    with pytest.raises(SignatureError, match="signing secret"):
        connector.verify(_request(body, _signed(body)), ConnectorSettings())


def test_one_message_from_a_logged_in_customer() -> None:
    [event] = connector.parse(_request((FIXTURES / "message.json").read_bytes()), SETTINGS).events
    assert (event.source, event.external_id, event.channel) == ("chat", "livechat-acme:m-40017", "chat")
    assert (event.direction, event.status, event.revision) == ("inbound", "received", 0)
    assert event.occurred_at == datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)
    assert event.thread_key == "livechat-acme:c-8812"
    assert (event.text, event.snippet) == ("Hi, my parcel never arrived.", "Hi, my parcel never arrived.")
    assert (event.queue, event.agent) == ("Delivery", None)
    assert event.customer.display_name == "Dana Reyes"
    assert event.customer.identifiers == [
        Identifier(kind="account", value="cust-10293", verification="authenticated"),
        Identifier(kind="chat", value="livechat-acme:v-5f2c", verification="unverified"),
        Identifier(kind="email", value="Dana.Reyes@Example.com", verification="unverified"),
        Identifier(kind="phone", value="+1 (415) 555-0123", verification="unverified"),
    ]
    assert event.endpoint is not None and event.endpoint.value == "livechat-acme"
    assert event.details == ChatDetails(
        platform="livechat-acme", conversation_id="c-8812", visitor_id="v-5f2c", author_type="customer"
    )


def test_a_list_of_messages_from_an_anonymous_visitor() -> None:
    events = connector.parse(_request((FIXTURES / "batch.json").read_bytes()), SETTINGS).events
    assert [(e.external_id, e.direction, e.status) for e in events] == [
        ("chat:1001", "inbound", "received"),
        ("chat:1002", "outbound", "sent"),
        ("chat:1003", "outbound", "sent"),
    ]
    assert [e.details.author_type for e in events if isinstance(e.details, ChatDetails)] == ["customer", "bot", "agent"]
    assert [e.agent for e in events] == [None, "ShipBot", "Kari Nordmann"]
    assert {e.thread_key for e in events} == {"chat:s-77"}
    assert all(
        e.customer.identifiers == [Identifier(kind="chat", value="chat:anon-9d41", verification="unverified")]
        for e in events
    )
    assert events[0].occurred_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def _message(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "conversation_id": "c-1",
        "message_id": "m-1",
        "sent_at": "2026-03-02T14:05:09Z",
        "author": "customer",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "$"),
        (b"{not json", "$"),
        (b"42", "$"),
        (b"[]", "$"),
        (json.dumps(_message(message_id=None)).encode(), "$.message_id"),
        (json.dumps(_message(author="visitor")).encode(), "$.author"),
        (json.dumps(_message(sent_at="2026-03-02 14:05")).encode(), "$.sent_at"),
        (json.dumps(_message(sent_at="2026-03-02T14:05:09")).encode(), "$.sent_at"),
        (json.dumps(_message(platform="Live Chat")).encode(), "$.platform"),
        (json.dumps(_message(conversation_id="")).encode(), "$.conversation_id"),
        (json.dumps(_message(authenticatedId="cust-1")).encode(), "$.authenticatedId"),
        (json.dumps([_message(), _message(text=7)]).encode(), "$[1].text"),
        ('{"conversation_id": "\udcff"}'.encode("utf-8", "surrogatepass"), "$"),
    ],
)
def test_refusals_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        connector.parse(_request(body), SETTINGS)
    assert caught.value.field == field


def test_missing_required_field_is_named_in_the_message() -> None:
    with pytest.raises(PayloadError, match="message_id"):
        connector.parse(_request(json.dumps(_message(message_id=None)).encode()), SETTINGS)


def test_nul_characters_are_dropped_and_long_text_gets_a_short_snippet() -> None:
    body = json.dumps(_message(text="a\u0000b " + "x" * 2000, display_name="Dana\u0000")).encode()
    [event] = connector.parse(_request(body), SETTINGS).events
    assert event.text is not None and event.text.startswith("ab x") and "\x00" not in event.text
    assert event.snippet is not None and len(event.snippet) == 1000 and event.snippet.endswith("…")
    assert event.customer.display_name == "Dana"


def test_decode_view_prefixes_paths() -> None:
    with pytest.raises(PayloadError) as caught:
        decode_view(b'{"conversation_id": "c", "message_id": 5}', ChatMessage, at="$.data.item")
    assert caught.value.field == "$.data.item.message_id"
