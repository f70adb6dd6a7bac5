"""Zendesk Sunshine Conversations webhooks, payload version v2 (route `sunshine-conversations`).

## Payload

A custom integration's webhook POSTs JSON holding one or more events:

```json
{"app": {"id": "5698edbf2a43bd081be982f1"},
 "webhook": {"id": "5e554d2cac66fb73a3c01869", "version": "v2"},
 "events": [{"id": "0ca7d56ba7b2e081e479fe9e", "type": "conversation:message", "createdAt": "2020-02-25T18:06:37.547Z",
             "payload": {"conversation": {"id": "13f32c6cf7d0d38e6e0eba93", "type": "personal"},
                         "message": {"id": "5e55622dac66fb73a3c01877", "received": "2020-02-25T18:06:37.547Z",
                                     "author": {"type": "user", "userId": "cbec0073faeda4dfcd21d0f1",
                                                "displayName": "Web User cbec0073faeda4dfcd21d0f1",
                                                "user": {"id": "cbec0073faeda4dfcd21d0f1", "externalId": "…"}},
                                     "content": {"type": "text", "text": "Hello world"},
                                     "source": {"type": "web", "integrationId": "5e554d2cac66fb73a3c01871"}}}}]}
```

Only `conversation:message` events become interactions; every other trigger (`conversation:create`,
`conversation:read`, delivery receipts …) is acknowledged and skipped. A payload of another version (v1, v1.1) is
refused: its shape is different.

## Signature

Sunshine Conversations does not sign the body: each request carries the webhook's secret in the `X-API-Key` header,
which is compared (in constant time) with the configured secret. The service never stores that header.

## Normalizing

Each message is one interaction keyed by the MESSAGE id (not the event id), so a message delivered again in another
event, another request or a retry is still one interaction; a request naming one message twice yields it once.
Author `user` is the customer (inbound); `business` (agents, bots, `AI` subtypes) is outbound. `user.externalId`, set
by the business's logged-in app, is an `account` identifier at `authenticated`; the Sunshine user id is the chat
handle `sunshine-conversations:<user id>`; a `profile.email` (with "include full user") is `unverified`."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec
from msgspec import Struct

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import parse_iso_datetime, require_secret, same_secret
from connectors.chat.native import Author, chat_message_event, clean, decode_view
from schemas import Attachment, Channel, InteractionEvent

PLATFORM = "sunshine-conversations"


class _Profile(Struct, rename="camel"):
    given_name: str | None = None
    surname: str | None = None
    email: str | None = None


class _User(Struct, rename="camel"):
    id: str | None = None
    external_id: str | None = None
    profile: _Profile | None = None


class _Author(Struct, rename="camel"):
    type: str
    user_id: str | None = None
    display_name: str | None = None
    subtypes: list[str] = []
    user: _User | None = None


class _Content(Struct, rename="camel"):
    type: str
    text: str | None = None
    media_url: str | None = None
    media_type: str | None = None
    media_size: int | None = None
    alt_text: str | None = None


class _Source(Struct, rename="camel"):
    type: str | None = None
    integration_id: str | None = None


class _Message(Struct, rename="camel"):
    id: str
    received: str
    author: _Author
    content: _Content
    source: _Source | None = None


class _Conversation(Struct):
    id: str
    type: str | None = None


class _MessagePayload(Struct):
    conversation: _Conversation
    message: _Message


class _Event(Struct, rename="camel"):
    id: str
    type: str
    created_at: str | None = None
    payload: msgspec.Raw = msgspec.Raw()  # its shape depends on `type`


class _App(Struct):
    id: str | None = None


class _Webhook(Struct):
    id: str | None = None
    version: str | None = None


class _Delivery(Struct):
    events: list[_Event]
    app: _App | None = None
    webhook: _Webhook | None = None


class SunshineConnector:
    name: ClassVar[str] = "sunshine-conversations"
    channel: ClassVar[Channel] = "chat"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        secret = require_secret(settings, "webhook secret")
        presented = request.header("x-api-key")
        if not presented:
            raise SignatureError("the X-API-Key header is missing", field="x-api-key")
        if not same_secret(secret, presented.strip()):
            raise SignatureError("the X-API-Key is not this webhook's secret", field="x-api-key")

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        delivery = decode_view(request.body, _Delivery)
        if delivery.webhook is not None and delivery.webhook.version not in (None, "v2"):
            raise PayloadError(
                f"webhook payload version {delivery.webhook.version!r} is not supported: set the webhook to v2",
                field="$.webhook.version",
            )
        app_id = clean(delivery.app.id) if delivery.app else None
        events: dict[str, InteractionEvent] = {}
        for index, event in enumerate(delivery.events):
            if event.type != "conversation:message":
                continue
            at = f"$.events[{index}].payload"
            if bytes(event.payload).strip() in (b"", b"null"):
                raise PayloadError("a conversation:message event carries no payload", field=at)
            payload = decode_view(event.payload, _MessagePayload, at=at)
            if payload.message.id not in events:
                events[payload.message.id] = _normalize(payload, app_id, at)
        return Parsed(events=list(events.values()))

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Sunshine Conversations never splits a message")


def _author(author: _Author) -> Author | None:
    if author.type == "user":
        return "customer"
    if author.type == "business":
        return "bot" if "AI" in author.subtypes else "agent"
    return None


def _normalize(payload: _MessagePayload, app_id: str | None, at: str) -> InteractionEvent:
    message = payload.message
    author = _author(message.author)
    if author is None:
        raise PayloadError(f"unknown author type {message.author.type[:40]!r}", field=f"{at}.message.author.type")
    received: datetime = parse_iso_datetime(message.received, "received", prefix=f"{at}.message.")
    user = message.author.user if author == "customer" else None
    profile = user.profile if user else None
    name = " ".join(filter(None, (profile.given_name, profile.surname))) if profile else ""
    content = message.content
    attachments = []
    if content.media_url:
        attachments.append(
            Attachment(
                url=content.media_url[:2048],
                content_type=clean(content.media_type, 255),
                size_bytes=content.media_size if content.media_size and content.media_size >= 0 else None,
            )
        )
    return chat_message_event(
        source="sunshine-conversations",
        platform=PLATFORM,
        external_id=message.id,
        conversation_id=payload.conversation.id,
        occurred_at=received,
        author=author,
        text=content.text or content.alt_text,
        visitor_id=(message.author.user_id or (user.id if user else None)) if author == "customer" else None,
        authenticated_id=user.external_id if user else None,
        email=profile.email if profile else None,
        display_name=name or (_display_name(message.author) if author == "customer" else None),
        agent=message.author.display_name if author != "customer" else None,
        endpoint=f"{PLATFORM}:{app_id}" if app_id else None,
        attachments=attachments,
        attributes={
            "source_type": message.source.type if message.source else None,
            "integration_id": message.source.integration_id if message.source else None,
            "content_type": content.type,
        },
        id_field=f"{at}.message.id",
    )


def _display_name(author: _Author) -> str | None:
    """The name the user gave, not the placeholder Sunshine makes up for anonymous users ("Web User <id>")."""
    name = clean(author.display_name, 256)
    if name and author.user_id and name.endswith(author.user_id):
        return None
    return name


connector = SunshineConnector()
