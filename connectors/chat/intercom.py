"""Intercom webhooks (route `intercom`): conversation notifications, API version 2.x (the 1.x form is read too).

## Payload

Intercom POSTs one notification per event (`Content-Type: application/json`):

```json
{"type": "notification_event", "app_id": "ecahpwf5", "id": "notif_ccd8a4d2-…", "topic": "conversation.user.replied",
 "created_at": 1714488423, "delivery_attempts": 1, "first_sent_at": 1714488423,
 "data": {"type": "notification_event_data", "item": {"type": "conversation", "id": "215467", …}}}
```

The item is the conversation: `source` (the first message: `id`, `delivered_as`, `subject`, HTML `body`, `author`
{`type`, `id`, `name`, `email`}), the customer as `contacts.contacts[]` {`id`, `external_id`} (2.x) or `user`
{`id`, `user_id`, `email`, `name`} (1.x, where `source` is called `conversation_message`), the new
`conversation_parts.conversation_parts[]` {`id`, `part_type`, HTML `body`, `created_at`, `author`},
`admin_assignee_id`, `team_assignee_id` and `state`. The `ping` topic Intercom sends when the webhook is saved,
topics about other objects (contacts, tickets …) and parts without text or internal notes give no events.

## Signature

`X-Hub-Signature: sha1=<hex HMAC-SHA1(app client secret, raw body)>`; the secret is the app's client secret from
the Developer Hub (Basic information).

## Normalizing

Each message is one interaction: a conversation part keyed by its part id, the `source` message by its id (so the
customer's opening message arrives with `conversation.user.created`, and again, unchanged, with later topics).
Authors `user`, `lead` and `contact` are the customer (inbound); `admin` and `team` agents and `bot` Fin or workflows
(outbound). HTML bodies become plain text. The customer's `user_id` / `external_id` (set by the business's logged-in
app) is an `account` identifier at `authenticated`; the Intercom contact id alone is the chat handle
`intercom:<contact id>`; emails Intercom reports are `unverified`."""

from __future__ import annotations

import hashlib
import hmac
from html.parser import HTMLParser
from typing import ClassVar

import msgspec
from msgspec import Struct

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import epoch_datetime, require_secret, same_secret
from connectors.chat.native import Author, chat_message_event, clean, decode_view
from schemas import Channel, InteractionEvent

PLATFORM = "intercom"
_AUTHORS: dict[str, Author] = {
    "user": "customer",
    "lead": "customer",
    "contact": "customer",
    "admin": "agent",
    "team": "agent",
    "bot": "bot",
}
Id = str | int


class _Author(Struct):
    type: str | None = None
    id: Id | None = None
    name: str | None = None
    email: str | None = None


class _Message(Struct):
    id: Id | None = None
    subject: str | None = None
    body: str | None = None
    delivered_as: str | None = None
    author: _Author | None = None


class _ContactRef(Struct):
    id: Id | None = None
    external_id: str | None = None


class _Contacts(Struct):
    contacts: list[_ContactRef] = []


class _User(Struct):
    id: Id | None = None
    user_id: str | None = None
    email: str | None = None
    name: str | None = None


class _Part(Struct):
    id: Id
    created_at: int | float
    part_type: str | None = None
    body: str | None = None
    author: _Author | None = None


class _Parts(Struct):
    conversation_parts: list[_Part] = []


class _Conversation(Struct):
    id: Id
    created_at: int | float
    source: _Message | None = None
    conversation_message: _Message | None = None
    contacts: _Contacts | None = None
    user: _User | None = None
    conversation_parts: _Parts | None = None
    admin_assignee_id: Id | None = None
    team_assignee_id: Id | None = None
    state: str | None = None


class _Kind(Struct):
    """Only what the item is: `conversation`, `contact`, `ping` …."""

    type: str | None = None


class _Data(Struct):
    item: msgspec.Raw = msgspec.Raw()  # decoded once the topic says what it is


class _Notification(Struct):
    type: str
    topic: str
    app_id: str | None = None
    id: str | None = None
    data: _Data | None = None


class _Text(HTMLParser):
    """Intercom bodies are HTML: keep the text, one line per block element."""

    _BLOCKS = frozenset({"p", "div", "li", "ul", "ol", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" or tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def html_to_text(html: str | None) -> str | None:
    """Plain text of an HTML body: tags dropped, entities decoded, blank runs collapsed."""
    if not html:
        return None
    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return "\n".join(line for line in lines if line) or None


def hub_signature(secret: str, body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


class IntercomConnector:
    name: ClassVar[str] = "intercom"
    channel: ClassVar[Channel] = "chat"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        secret = require_secret(settings, "client secret")
        presented = request.header("x-hub-signature")
        if not presented:
            raise SignatureError("the X-Hub-Signature header is missing", field="x-hub-signature")
        if not same_secret(hub_signature(secret, request.body), presented.strip()):
            raise SignatureError("the X-Hub-Signature does not match this request", field="x-hub-signature")

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        notification = decode_view(request.body, _Notification)
        if notification.type != "notification_event":
            raise PayloadError(f"expected a notification_event, not {notification.type[:40]!r}", field="$.type")
        if not notification.topic.startswith("conversation.") or notification.topic == "conversation.deleted":
            return Parsed()  # ping, contact, ticket … topics
        if notification.data is None or bytes(notification.data.item).strip() in (b"", b"null"):
            raise PayloadError("the notification carries no conversation", field="$.data.item")
        kind = decode_view(notification.data.item, _Kind, at="$.data.item")
        if kind.type != "conversation":
            return Parsed()
        conversation = decode_view(notification.data.item, _Conversation, at="$.data.item")
        return Parsed(events=_messages(conversation, notification.app_id))

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Intercom never splits a message")


class _Customer(Struct):
    contact_id: str | None = None
    account_id: str | None = None
    email: str | None = None
    name: str | None = None


def _customer(conversation: _Conversation, authors: list[_Author]) -> _Customer:
    """The conversation's customer: the first contact (2.x) or the user (1.x), completed by a customer author."""
    contact_id = account_id = email = name = None
    if conversation.contacts and conversation.contacts.contacts:
        first = conversation.contacts.contacts[0]
        contact_id, account_id = clean(first.id), clean(first.external_id)
    elif conversation.user is not None:
        user = conversation.user
        contact_id, account_id, email, name = clean(user.id), clean(user.user_id), user.email, user.name
    for author in authors:
        if _AUTHORS.get(author.type or "") == "customer" and (contact_id is None or clean(author.id) == contact_id):
            contact_id = contact_id or clean(author.id)
            email, name = email or author.email, name or author.name
    return _Customer(contact_id=contact_id, account_id=account_id, email=clean(email, 320), name=clean(name, 256))


def _messages(conversation: _Conversation, app_id: str | None) -> list[InteractionEvent]:
    at = "$.data.item"
    source_name = "source" if conversation.source is not None else "conversation_message"
    source = conversation.source or conversation.conversation_message
    parts = conversation.conversation_parts.conversation_parts if conversation.conversation_parts else []
    authors = [m.author for m in [source, *parts] if m is not None and m.author is not None]
    customer = _customer(conversation, authors)
    # (path of the message, the message, its time, path of the object holding the time)
    messages: list[tuple[str, _Part | _Message, int | float, str]] = []
    if source is not None and source.id is not None:
        messages.append((f"{at}.{source_name}", source, conversation.created_at, at))
    for index, part in enumerate(parts):
        path = f"{at}.conversation_parts.conversation_parts[{index}]"
        messages.append((path, part, part.created_at, path))
    events: list[InteractionEvent] = []
    for path, message, created_at, created_path in messages:
        author = _AUTHORS.get(message.author.type or "") if message.author else None
        text = html_to_text(message.body)
        part_type = message.part_type if isinstance(message, _Part) else None
        if author is None or not text or (part_type or "").startswith("note"):
            continue  # internal notes, and parts that only record an action (assignment, close without a reply)
        speaker = (message.author.name or message.author.email or clean(message.author.id)) if message.author else None
        events.append(
            chat_message_event(
                source="intercom",
                platform=PLATFORM,
                external_id=str(message.id),
                conversation_id=str(conversation.id),
                occurred_at=epoch_datetime(created_at, "created_at", prefix=f"{created_path}."),
                author=author,
                text=text,
                visitor_id=customer.contact_id,
                authenticated_id=customer.account_id,
                email=customer.email,
                display_name=customer.name,
                agent=speaker if author != "customer" else None,
                queue=_assignee(conversation.team_assignee_id),
                endpoint=f"{PLATFORM}:{app_id}" if app_id else None,
                subject=html_to_text(message.subject) if isinstance(message, _Message) else None,
                attributes={"part_type": part_type, "state": conversation.state},
                id_field=f"{path}.id",
            )
        )
    return events


def _assignee(value: Id | None) -> str | None:
    """Intercom reports "nobody" as 0 or null."""
    return None if value in (None, 0, "0", "") else clean(value)


connector = IntercomConnector()
