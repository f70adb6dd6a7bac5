"""unify's own chat webhook (route `chat`), for chat platforms that have no connector of their own.

## Payload

`POST /v1/webhooks/chat` with `Content-Type: application/json` and one message object, or an array of them:

```json
{
  "platform": "livechat-acme",
  "conversation_id": "c-8812",
  "message_id": "m-40017",
  "sent_at": "2026-03-02T14:05:09Z",
  "author": "customer",
  "text": "Hi, my parcel never arrived.",
  "visitor_id": "v-5f2c",
  "authenticated_id": "cust-10293",
  "email": "dana@example.com",
  "phone": "+14155550123",
  "display_name": "Dana Reyes",
  "agent": null,
  "queue": "Delivery"
}
```

- `conversation_id`, `message_id` (unique within the platform), `sent_at` (RFC 3339 with an offset) and `author`
  (`customer`, `agent` or `bot`) are required; unknown fields are refused, so typos do not pass silently.
- The customer fields (`visitor_id`, `authenticated_id`, `email`, `phone`, `display_name`) describe the
  conversation's customer whoever wrote the message. `authenticated_id` is the business's own user id and must only
  be sent when the customer is logged in to the business's app: it becomes an `account` identifier at
  `authenticated`. `visitor_id` (the anonymous widget visitor) becomes the chat handle `<platform>:<visitor_id>`;
  `email` and `phone` are `unverified`.
- `platform` (default `chat`, lower-case letters, digits, `.`, `_`, `-`) namespaces ids: the interaction key is
  `<platform>:<message_id>` and its thread `<platform>:<conversation_id>`.
- `agent`, `queue`: who answered and where the chat was routed.

## Signature

`X-Unify-Timestamp: <unix seconds>` and `X-Unify-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`
over the raw body bytes; several comma-separated `v1=` values are accepted (secret rotation). A timestamp more than
`max_skew_seconds` (300 s) away from now is refused as stale or replayed.

## Normalizing

Each message is one `chat` interaction: customer messages are inbound (`received`), agent and bot messages outbound
(`sent`). The building blocks every chat connector uses (`decode_view`, `chat_message_event`) are defined here."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, ClassVar, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import chat_handle, check_timestamp_fresh, epoch_datetime, require_secret, same_secret
from schemas import Attachment, Channel, ChatDetails, CustomerParty, Endpoint, Identifier, InteractionEvent

Author = Literal["customer", "agent", "bot"]
Id = Annotated[str, Meta(min_length=1, max_length=256)]
Name = Annotated[str, Meta(min_length=1, max_length=256)]


class ChatMessage(Struct, kw_only=True, forbid_unknown_fields=True):
    """One chat message, as a chat platform without its own connector reports it to unify."""

    conversation_id: Id
    """The platform's id of the conversation (chat session); becomes the thread key."""
    message_id: Id
    """The platform's id of this message, unique within the platform."""
    sent_at: Annotated[datetime, Meta(tz=True)]
    """When the message was sent (RFC 3339 with an offset)."""
    author: Author
    """Who wrote it: `customer` (inbound), `agent` or `bot` (outbound)."""
    text: Annotated[str, Meta(max_length=1_000_000)] | None = None
    visitor_id: Id | None = None
    """The platform's id of the (possibly anonymous) visitor."""
    authenticated_id: Id | None = None
    """The business's own id of the customer; only when the customer is logged in to the business's app."""
    email: Annotated[str, Meta(max_length=320)] | None = None
    phone: Annotated[str, Meta(max_length=64)] | None = None
    display_name: Name | None = None
    agent: Name | None = None
    queue: Name | None = None
    platform: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")] = "chat"


# --- shared building blocks of the chat connectors -------------------------------------------------------------

ViewT = TypeVar("ViewT")
_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]+)`$")


def decode_view(body: bytes | msgspec.Raw, view: type[ViewT], *, at: str = "$") -> ViewT:
    """Decode JSON into a view Struct; any problem becomes a PayloadError naming the JSON path (prefixed by `at`)."""
    if not bytes(body).strip():
        raise PayloadError("the body is empty", field=at)
    try:
        return msgspec.json.decode(body, type=view)
    except msgspec.ValidationError as exc:
        match = _AT_PATH.match(str(exc))
        message, path = (match["message"], match["path"] or "") if match else (str(exc), "")
        if named := _NAMED_FIELD.match(message):  # a missing or unknown field: name it, not its parent
            path += f".{named[1]}"
        raise PayloadError(message, field=at + path) from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc}", field=at) from None
    except UnicodeDecodeError as exc:  # msgspec decodes strings lazily
        raise PayloadError(f"the body is not valid UTF-8: {exc.reason}", field=at) from None
    except RecursionError:  # msgspec's answer to JSON nested deeper than it decodes (e.g. inside a Raw field)
        raise PayloadError("malformed JSON: nested too deeply", field=at) from None


def clean(value: object, limit: int = 512) -> str | None:
    """A platform's string (or number) as text: stripped, without NUL characters, cut to `limit`; None when empty."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).replace("\x00", "").strip()
    return text[:limit].rstrip() or None


def chat_message_event(
    *,
    source: str,
    platform: str,
    external_id: str,
    conversation_id: str,
    occurred_at: datetime,
    author: Author,
    text: str | None = None,
    visitor_id: str | None = None,
    authenticated_id: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    display_name: str | None = None,
    agent: str | None = None,
    queue: str | None = None,
    endpoint: str | None = None,
    thread_key: str | None = None,
    subject: str | None = None,
    revision: int = 0,
    attachments: Sequence[Attachment] = (),
    attributes: Mapping[str, object] | None = None,
    id_field: str = "$.id",
) -> InteractionEvent:
    """One chat message as an interaction event: identifiers at the right verification level, direction and status
    from the author, every string cleaned, and the event checked against the schema's limits."""
    key = clean(external_id, 10_000)
    if key is None or len(key) > 512:
        raise PayloadError("the message id is missing or longer than 512 characters", field=id_field)
    identifiers: list[Identifier] = []
    if account := clean(authenticated_id, 320):
        identifiers.append(Identifier(kind="account", value=account, verification="authenticated"))
    visitor = clean(visitor_id, 256)
    if visitor:
        identifiers.append(Identifier(kind="chat", value=chat_handle(platform, visitor)[:320]))
    for kind, value in (("email", email), ("phone", phone)):
        if cleaned := clean(value, 320):
            identifiers.append(Identifier(kind=kind, value=cleaned))  # type: ignore[arg-type]
    body = (text or "").replace("\x00", "").strip() or None
    if body is not None and len(body) > 1_000_000:
        body = body[:1_000_000]
    snippet = None if body is None else (body if len(body) <= 1000 else body[:999] + "…")
    conversation = clean(conversation_id, 256)
    business_side = clean(endpoint, 320)
    event = InteractionEvent(
        source=source,
        external_id=key,
        channel="chat",
        direction="inbound" if author == "customer" else "outbound",
        status="received" if author == "customer" else "sent",
        revision=revision,
        occurred_at=occurred_at,
        customer=CustomerParty(identifiers=identifiers, display_name=clean(display_name, 256)),
        endpoint=Endpoint(kind="chat", value=business_side) if business_side else None,
        agent=clean(agent),
        queue=clean(queue),
        thread_key=clean(thread_key) or (clean(f"{platform}:{conversation}") if conversation else None),
        subject=clean(subject, 998),
        text=body,
        snippet=snippet,
        attachments=list(attachments)[:100],
        attributes={k: v for k, v in ((k, clean(v, 4096)) for k, v in (attributes or {}).items()) if v},
        details=ChatDetails(platform=platform, conversation_id=conversation, visitor_id=visitor, author_type=author),
    )
    try:  # a Struct's constructor does not check its limits: convert does
        return msgspec.convert(msgspec.to_builtins(event), InteractionEvent)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PayloadError(f"the message does not make a valid interaction: {exc}", field=id_field) from None


# --- the connector ---------------------------------------------------------------------------------------------


def unify_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` + hex HMAC-SHA256 of `timestamp.body`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


class NativeChatConnector:
    name: ClassVar[str] = "chat"
    channel: ClassVar[Channel] = "chat"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        secret = require_secret(settings, "signing secret")
        timestamp = (request.header("x-unify-timestamp") or "").strip()
        if not timestamp:
            raise SignatureError("the X-Unify-Timestamp header is missing", field="x-unify-timestamp")
        if not timestamp.isdigit():
            raise SignatureError("X-Unify-Timestamp must be Unix seconds", field="x-unify-timestamp")
        presented = request.header("x-unify-signature")
        if not presented:
            raise SignatureError("the X-Unify-Signature header is missing", field="x-unify-signature")
        expected = unify_signature(secret, timestamp, request.body)
        if not any(same_secret(expected, part.strip()) for part in presented.split(",")):
            raise SignatureError("the X-Unify-Signature does not match this request", field="x-unify-signature")
        check_timestamp_fresh(epoch_datetime(timestamp, "x-unify-timestamp"), request, settings, "x-unify-timestamp")

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        decoded = decode_view(request.body, ChatMessage | list[ChatMessage])  # type: ignore[arg-type]
        messages: list[ChatMessage] = decoded if isinstance(decoded, list) else [decoded]
        if not messages:
            raise PayloadError("the array holds no message", field="$")
        if len(messages) > 1000:
            raise PayloadError("at most 1000 messages per request", field="$")
        prefix = "$" if not isinstance(decoded, list) else "$[{}]"
        return Parsed(events=[_normalize(m, prefix.format(i)) for i, m in enumerate(messages)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("chat messages are never split")


def _normalize(message: ChatMessage, at: str) -> InteractionEvent:
    return chat_message_event(
        source="chat",
        platform=message.platform,
        external_id=f"{message.platform}:{message.message_id}",
        conversation_id=message.conversation_id,
        occurred_at=message.sent_at,
        author=message.author,
        text=message.text,
        visitor_id=message.visitor_id,
        authenticated_id=message.authenticated_id,
        email=message.email,
        phone=message.phone,
        display_name=message.display_name,
        agent=message.agent,
        queue=message.queue,
        endpoint=message.platform,
        id_field=f"{at}.message_id",
    )


connector = NativeChatConnector()
