"""Intercom: X-Hub-Signature, conversation notifications (2.x `contacts` and 1.x `user`), HTML bodies, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.chat.intercom import connector, html_to_text, hub_signature
from schemas import ChatDetails, Identifier

FIXTURES = Path(__file__).parent.parent / "fixtures" / "intercom"
SECRET = "6c1b9e0a-2f4d-4e8b-9a7c-3d5e1f0b2a48"
SETTINGS = ConnectorSettings(secret=SECRET)


def _request(body: bytes, headers: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url="https://unify.example.com/v1/webhooks/intercom",
        headers={"content-type": "application/json", **(headers or {})},
        body=body,
        received_at=datetime(2024, 4, 30, 15, tzinfo=UTC),
    )


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _parse(body: bytes) -> list[Any]:
    return connector.parse(_request(body), SETTINGS).events


def test_signature_vector() -> None:
    # HMAC-SHA1("secret", "hello") — the RFC 2104 construction, as Intercom computes it over the raw body.
    assert hub_signature("secret", b"hello") == "sha1=5112055c05f944f85755efc5cd8970e194e9f45b"


def test_verify_accepts_the_hub_signature_and_refuses_others() -> None:
    body = _fixture("conversation.user.created.json")
    connector.verify(_request(body, {"x-hub-signature": hub_signature(SECRET, body)}), SETTINGS)
    for headers in ({}, {"x-hub-signature": hub_signature("other", body)}, {"x-hub-signature": "sha256=00"}):
        with pytest.raises(SignatureError) as caught:
            connector.verify(_request(body, headers), SETTINGS)
        assert caught.value.field == "x-hub-signature"
    with pytest.raises(SignatureError, match="client secret"):
        connector.verify(_request(body, {"x-hub-signature": hub_signature(SECRET, body)}), ConnectorSettings())


def test_a_logged_in_user_opens_a_conversation() -> None:
    [event] = _parse(_fixture("conversation.user.created.json"))
    assert (event.source, event.external_id, event.channel) == ("intercom", "2130281753", "chat")
    assert (event.direction, event.status) == ("inbound", "received")
    assert event.occurred_at == datetime.fromtimestamp(1714488420, UTC)
    assert event.thread_key == "intercom:215467329461234"
    assert event.text == "Hi there, my invoice for April shows the wrong amount & VAT.\nCan you check?"
    assert event.customer.display_name == "Dana Reyes"
    assert event.customer.identifiers == [
        Identifier(kind="account", value="cust-10293", verification="authenticated"),
        Identifier(kind="chat", value="intercom:6630f0e85e3fbf1e1b41a0d4", verification="unverified"),
        Identifier(kind="email", value="dana.reyes@example.com", verification="unverified"),
    ]
    assert event.endpoint is not None and event.endpoint.value == "intercom:ecahpwf5"
    assert (event.agent, event.queue, event.subject) == (None, None, None)
    assert event.details == ChatDetails(
        platform="intercom",
        conversation_id="215467329461234",
        visitor_id="6630f0e85e3fbf1e1b41a0d4",
        author_type="customer",
    )


def test_an_admin_reply_is_the_new_part_and_the_opening_message_is_the_same_key_again() -> None:
    opening, reply = _parse(_fixture("conversation.admin.replied.json"))
    [created] = _parse(_fixture("conversation.user.created.json"))
    assert (opening.external_id, opening.text, opening.occurred_at) == (
        created.external_id,
        created.text,
        created.occurred_at,
    )
    assert (reply.external_id, reply.direction, reply.status) == ("19478564213", "outbound", "sent")
    assert reply.occurred_at == datetime.fromtimestamp(1714489010, UTC)
    assert (
        reply.text == "Hi Dana,\nthanks for flagging this — I've corrected the VAT line.\nA new invoice is on its way."
    )
    assert (reply.agent, reply.queue) == ("Sam Ortega", "5017691")
    assert reply.attributes == {"part_type": "comment", "state": "open"}
    assert isinstance(reply.details, ChatDetails) and reply.details.author_type == "agent"
    # The customer is still the conversation's contact, whoever wrote the part.
    assert reply.customer.identifiers[0] == Identifier(kind="account", value="cust-10293", verification="authenticated")


def test_an_anonymous_lead_in_the_older_user_form_and_notes_are_skipped() -> None:
    events = _parse(_fixture("conversation.user.replied.v1.json"))
    assert [(e.external_id, e.direction) for e in events] == [("2130292087", "inbound"), ("19478603377", "inbound")]
    for event in events:
        assert event.customer.identifiers == [
            Identifier(kind="chat", value="intercom:6631022a9b1c4e0f5d8a7e21", verification="unverified")
        ]
        assert event.customer.display_name is None
    assert events[1].text == "We are a registered charity in the UK."


def test_ping_and_other_topics_give_no_events() -> None:
    assert _parse(_fixture("ping.json")) == []
    contact = {"type": "notification_event", "topic": "contact.user.created", "data": {"item": {"type": "contact"}}}
    assert _parse(json.dumps(contact).encode()) == []


def test_bot_parts_and_parts_without_text() -> None:
    item = json.loads(_fixture("conversation.admin.replied.json"))
    parts = item["data"]["item"]["conversation_parts"]["conversation_parts"]
    parts[0]["author"] = {"type": "bot", "id": "9001", "name": "Fin"}
    parts.append({"id": "19478564299", "part_type": "close", "body": None, "created_at": 1714489100, "author": {}})
    parts.append({"id": "19478564300", "part_type": "assignment", "body": "", "created_at": 1714489101})
    _, bot = _parse(json.dumps(item).encode())
    assert (bot.external_id, bot.direction, bot.agent) == ("19478564213", "outbound", "Fin")
    assert isinstance(bot.details, ChatDetails) and bot.details.author_type == "bot"


def test_html_to_text() -> None:
    assert html_to_text("<p>One&nbsp;&amp; two</p><ul><li>a</li><li>b</li></ul>line<br/>break") == (
        "One\xa0& two\na\nb\nline\nbreak".replace("\xa0", " ")
    )
    assert html_to_text("<p> </p>") is None
    assert html_to_text(None) is None


def _notification(**item: object) -> bytes:
    base = json.loads(_fixture("conversation.admin.replied.json"))
    base["data"]["item"].update(item)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "$"),
        (b"<xml/>", "$"),
        (b'{"type": "notification_event"}', "$.topic"),
        (b'{"type": "event", "topic": "ping"}', "$.type"),
        (b'{"type": "notification_event", "topic": "conversation.user.created"}', "$.data.item"),
        (b'{"type": "notification_event", "topic": "conversation.user.created", "data": {"item": 5}}', "$.data.item"),
        (_notification(id=None), "$.data.item.id"),
        (_notification(created_at="yesterday"), "$.data.item.created_at"),
        (_notification(contacts={"contacts": "nobody"}), "$.data.item.contacts.contacts"),
        (
            _notification(conversation_parts={"conversation_parts": [{"id": "1", "created_at": "soon"}]}),
            "$.data.item.conversation_parts.conversation_parts[0].created_at",
        ),
        (
            _notification(
                conversation_parts={
                    "conversation_parts": [{"id": "1", "created_at": 1e300, "body": "x", "author": {"type": "admin"}}]
                }
            ),
            "$.data.item.conversation_parts.conversation_parts[0].created_at",
        ),
        (_notification(source={"id": "x" * 600, "body": "hi", "author": {"type": "user"}}), "$.data.item.source.id"),
    ],
)
def test_refusals_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _parse(body)
    assert caught.value.field == field
