"""Chatwoot webhooks (route `chatwoot`): account webhooks, API-channel callbacks and agent-bot webhooks.

## Payload

Chatwoot POSTs one JSON object per event, named by `event`. A `message_created` / `message_updated` body is the
message itself:

```json
{"event": "message_created", "id": 4211, "content": "Where is my order?", "created_at": "2024-05-02T09:14:03.000Z",
 "message_type": "incoming", "content_type": "text", "private": false,
 "sender": {"id": 88, "name": "Dana Reyes", "type": "contact"},
 "conversation": {"id": 312, "status": "open", "updated_at": 1714641243.52,
                  "contact_inbox": {"source_id": "c2f9…", "hmac_verified": true},
                  "meta": {"sender": {"id": 88, "name": "Dana Reyes", "email": "dana@example.com",
                                      "phone_number": "+14155550123", "identifier": "cust-10293", "type": "contact"},
                           "assignee": {"id": 3, "name": "Sam Agent", "type": "user"}, "hmac_verified": true}},
 "inbox": {"id": 7, "name": "Website"}, "account": {"id": 1, "name": "Acme"}}
```

`conversation.id` is the conversation's display id, unique within the account. The customer is
`conversation.meta.sender` (older releases: a top-level `contact`). Only `incoming` and `outgoing` messages that are
not private notes become interactions; `activity` and `template` messages, and every other event
(`conversation_created`, `conversation_status_changed`, `conversation_updated`, `contact_*`, typing …) give none.

## Signature

Recent Chatwoot signs a webhook that has a secret: `X-Chatwoot-Timestamp: <unix seconds>` and
`X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`; stale timestamps are refused.
With a `secret` configured a signed request is required. Chatwoot sends webhooks without a secret unsigned: for
those, configure `basic_auth` instead and put `https://user:password@…/v1/webhooks/chatwoot` in Chatwoot.

## Normalizing

Each message is one interaction keyed by the message id, its thread `chatwoot:<account id>:<conversation id>`.
`message_updated` (an edit, a delivery status) revises it, ordered by the conversation's `updated_at`. `incoming` is
the customer (inbound); `outgoing` is an agent (`user`) or a bot (`agent_bot`, `captain_assistant`). The contact's
`identifier` (the business's user id) is an `account` identifier at `authenticated` when Chatwoot reports the contact
`hmac_verified` (identity validation on), `unverified` otherwise; `contact_inbox.source_id` is the chat handle
`chatwoot:<source id>`; email and phone are `unverified`."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from typing import ClassVar

import msgspec
from msgspec import Struct

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import (
    check_basic_auth,
    check_timestamp_fresh,
    epoch_datetime,
    parse_iso_datetime,
    same_secret,
)
from connectors.chat.native import Author, chat_message_event, clean, decode_view
from schemas import Attachment, Channel, Identifier, InteractionEvent

PLATFORM = "chatwoot"
_MESSAGE_EVENTS = frozenset({"message_created", "message_updated"})
_MESSAGE_TYPES = {"incoming": "incoming", "outgoing": "outgoing", 0: "incoming", 1: "outgoing"}
_BOT_SENDERS = frozenset({"agent_bot", "captain_assistant"})
_GENERATED_NAME = re.compile(r"^[a-z]+-[a-z]+-\d{1,4}$")  # what Chatwoot calls an anonymous visitor: summer-frost-381
Id = int | str


class _Person(Struct):
    id: Id | None = None
    name: str | None = None
    email: str | None = None
    phone_number: str | None = None
    identifier: str | None = None
    type: str | None = None


class _ContactInbox(Struct):
    source_id: str | None = None
    hmac_verified: bool | None = None


class _Named(Struct):
    id: Id | None = None
    name: str | None = None


class _Meta(Struct):
    sender: _Person | None = None
    assignee: _Person | None = None
    team: _Named | None = None
    hmac_verified: bool | None = None


class _Conversation(Struct):
    id: Id
    display_id: Id | None = None
    status: str | None = None
    updated_at: float | None = None
    contact_inbox: _ContactInbox | None = None
    meta: _Meta | None = None


class _Attachment(Struct):
    file_type: str | None = None
    data_url: str | None = None
    file_size: int | None = None


class _Envelope(Struct):
    event: str


class _MessageEvent(Struct):
    event: str
    id: Id
    created_at: str | int | float
    conversation: _Conversation
    message_type: str | int | None = None
    content: str | None = None
    private: bool | None = False
    sender: _Person | None = None
    contact: _Person | None = None
    inbox: _Named | None = None
    account: _Named | None = None
    attachments: list[_Attachment] = []


def chatwoot_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class ChatwootConnector:
    name: ClassVar[str] = "chatwoot"
    channel: ClassVar[Channel] = "chat"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        if not settings.secret:
            if not settings.basic_auth:
                raise SignatureError(
                    "the connector has neither a secret (signed webhooks) nor basic_auth (unsigned webhooks) "
                    "configured, so the request cannot be verified"
                )
            check_basic_auth(request, settings)
            return
        timestamp = (request.header("x-chatwoot-timestamp") or "").strip()
        presented = (request.header("x-chatwoot-signature") or "").strip()
        if not presented:
            raise SignatureError("the X-Chatwoot-Signature header is missing", field="x-chatwoot-signature")
        if not timestamp.isdigit():
            raise SignatureError("X-Chatwoot-Timestamp must be Unix seconds", field="x-chatwoot-timestamp")
        if not same_secret(chatwoot_signature(settings.secret, timestamp, request.body), presented):
            raise SignatureError("the X-Chatwoot-Signature does not match this request", field="x-chatwoot-signature")
        when = epoch_datetime(timestamp, "x-chatwoot-timestamp")
        check_timestamp_fresh(when, request, settings, "x-chatwoot-timestamp")

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        if decode_view(request.body, _Envelope).event not in _MESSAGE_EVENTS:
            return Parsed()
        message = decode_view(request.body, _MessageEvent)
        kind = _MESSAGE_TYPES.get(message.message_type)  # type: ignore[arg-type]
        if kind is None or message.private:
            return Parsed()  # activity and template messages, private notes
        return Parsed(events=[_normalize(message, kind)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Chatwoot never splits a message")


def _created_at(value: str | int | float) -> datetime:
    """Chatwoot writes `2024-05-02T09:14:03.000Z`, older releases `2024-05-02 09:14:03 UTC`, push data Unix seconds."""
    if isinstance(value, int | float) or value.strip().isdigit():
        return epoch_datetime(value, "created_at", prefix="$.")
    text = value.strip()
    return parse_iso_datetime(text.removesuffix(" UTC") if text.endswith(" UTC") else text, "created_at", prefix="$.")


def _customer(message: _MessageEvent) -> _Person:
    """The conversation's contact, from the richest place the release puts it."""
    sources = [message.conversation.meta.sender if message.conversation.meta else None, message.contact]
    if message.sender is not None and message.sender.type == "contact":
        sources.append(message.sender)
    known = [s for s in sources if s is not None]

    def first(name: str) -> str | None:
        return next((v for s in known if (v := clean(getattr(s, name), 320))), None)

    return _Person(
        id=first("id"),
        name=first("name"),
        email=first("email"),
        phone_number=first("phone_number"),
        identifier=first("identifier"),
    )


def _normalize(message: _MessageEvent, kind: str) -> InteractionEvent:
    conversation = message.conversation
    meta = conversation.meta or _Meta()
    contact = _customer(message)
    inbox = conversation.contact_inbox or _ContactInbox()
    sender_type = message.sender.type if message.sender else None
    author: Author = "customer" if kind == "incoming" else ("bot" if sender_type in _BOT_SENDERS else "agent")
    account_id = clean(message.account.id) if message.account else None
    number = clean(conversation.display_id if conversation.display_id is not None else conversation.id)
    if number is None:
        raise PayloadError("the conversation has no id", field="$.conversation.id")
    verified = bool(meta.hmac_verified or inbox.hmac_verified)
    agent = message.sender.name if author != "customer" and message.sender else None
    revision = int(conversation.updated_at * 1000) if conversation.updated_at and conversation.updated_at > 0 else 0
    event = chat_message_event(
        source="chatwoot",
        platform=PLATFORM,
        external_id=str(message.id),
        conversation_id=number,
        thread_key=f"{PLATFORM}:{account_id}:{number}" if account_id else None,
        occurred_at=_created_at(message.created_at),
        author=author,
        text=message.content,
        visitor_id=inbox.source_id,
        authenticated_id=contact.identifier if verified else None,
        email=contact.email,
        phone=contact.phone_number,
        display_name=None if contact.name and _GENERATED_NAME.match(contact.name) else contact.name,
        agent=agent or (meta.assignee.name if meta.assignee else None),
        queue=meta.team.name if meta.team else None,
        endpoint=f"{PLATFORM}:{account_id}:{clean(message.inbox.id)}" if message.inbox and account_id else None,
        revision=revision,
        attachments=[
            Attachment(
                url=a.data_url[:2048],
                content_type=clean(a.file_type, 255),
                size_bytes=a.file_size if a.file_size is not None and a.file_size >= 0 else None,
            )
            for a in message.attachments
            if a.data_url
        ],
        attributes={
            "inbox_name": message.inbox.name if message.inbox else None,
            "conversation_status": conversation.status,
        },
        id_field="$.id",
    )
    if contact.identifier and not verified:  # the business's id, but not proven by identity validation
        claimed = Identifier(kind="account", value=contact.identifier[:320])
        customer = msgspec.structs.replace(event.customer, identifiers=[claimed, *event.customer.identifiers])
        event = msgspec.structs.replace(event, customer=customer)
    return event


connector = ChatwootConnector()
