"""Twilio Messaging: incoming messages and status callbacks of outbound messages (SMS, MMS, WhatsApp via Twilio).

Payload: Twilio calls the number's (or Messaging Service's) "A message comes in" webhook with
`application/x-www-form-urlencoded` parameters (or query parameters when the webhook is set to GET):

- `MessageSid` (older names `SmsSid`, `SmsMessageSid`), `AccountSid`, `MessagingServiceSid`;
- `From`, `To`: E.164 numbers, or `whatsapp:+14155550123` for WhatsApp;
- `Body`, `NumSegments`, `NumMedia` and, for each attachment N from 0, `MediaUrl{N}` and `MediaContentType{N}`;
- `FromCity`, `FromState`, `FromZip`, `FromCountry` (the sender's number, as far as Twilio knows it);
- WhatsApp only: `ProfileName` (the sender's profile name) and `WaId` (the sender's WhatsApp id);
- `SmsStatus`: `received` for an incoming message.

The status callback of a message sent through the API carries the same ids plus `MessageStatus` (accepted,
scheduled, queued, sending, sent, delivered, undelivered, failed, read, canceled) and `ErrorCode`.

Signature: `X-Twilio-Signature`, HMAC-SHA1 with the account's auth token over the URL and the sorted parameters
(`connectors._twilio.verify_twilio`). Twilio expects TwiML back; an empty `<Response/>` sends no reply.

Normalization: one event per message, keyed by `MessageSid`. An incoming message is inbound and `received`, the
customer being `From` (an unverified caller id; `ProfileName` as display name) and the endpoint `To`. A status
callback is outbound, the customer being `To`; its status orders the deliveries (`revision`), so callbacks
arriving out of order still end on the last state. `whatsapp:` addresses give `SmsDetails(transport="whatsapp")`,
messages with media `mms`, others `sms`; media become attachments."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar

from connectors._base import (
    ConnectorSettings,
    Fragment,
    Parsed,
    PayloadError,
    Reply,
    SignatureError,
    WebhookRequest,
)
from connectors._common import first_values, optional_int, required
from connectors._twilio import verify_twilio
from schemas import (
    Attachment,
    Channel,
    CustomerParty,
    Endpoint,
    Identifier,
    InteractionEvent,
    InteractionStatus,
    SmsDetails,
)

SOURCE = "twilio-sms"
_WHATSAPP = "whatsapp:"
_INBOUND_STATUSES = frozenset({"received", "receiving"})
# Twilio's message status → (our status, its rank in a message's life: later states have higher revisions).
_OUTBOUND_STATUSES: dict[str, tuple[InteractionStatus, int]] = {
    "accepted": ("queued", 1),
    "scheduled": ("queued", 1),
    "queued": ("queued", 2),
    "sending": ("queued", 3),
    "sent": ("sent", 4),
    "canceled": ("canceled", 5),
    "failed": ("failed", 5),
    "undelivered": ("undelivered", 6),
    "delivered": ("delivered", 6),
    "read": ("delivered", 7),
}
_MAX_MEDIA = 100
_ATTRIBUTES = {
    "AccountSid": "account_sid",
    "MessagingServiceSid": "messaging_service_sid",
    "FromCity": "from_city",
    "FromState": "from_state",
    "FromZip": "from_zip",
    "FromCountry": "from_country",
    "WaId": "wa_id",
    "ErrorCode": "error_code",
    "ErrorMessage": "error_message",
}


def _message_sid(fields: Mapping[str, str]) -> str:
    for name in ("MessageSid", "SmsMessageSid", "SmsSid"):
        value = fields.get(name, "").strip()
        if value:
            if len(value) > 512:
                raise PayloadError(f"`{name}` is longer than 512 characters", field=name)
            return value
    raise PayloadError("`MessageSid` is missing", field="MessageSid")


def _address(fields: Mapping[str, str], name: str, *, needed: bool) -> str | None:
    value = required(fields, name).strip() if needed else fields.get(name, "").strip()
    if len(value) > 320:
        raise PayloadError(f"`{name}` is longer than 320 characters", field=name)
    return value or None


def _endpoint(address: str | None) -> Endpoint | None:
    if not address:
        return None
    number = address[len(_WHATSAPP) :] if address.lower().startswith(_WHATSAPP) else address
    return Endpoint(kind="phone", value=number.strip()) if number.strip() else None


def _media(fields: Mapping[str, str]) -> list[Attachment]:
    count = optional_int(fields, "NumMedia") or 0
    if not 0 <= count <= _MAX_MEDIA:
        raise PayloadError(f"`NumMedia` must be between 0 and {_MAX_MEDIA}, not {count}", field="NumMedia")
    attachments: list[Attachment] = []
    for index in range(count):
        url = required(fields, f"MediaUrl{index}").strip()
        if len(url) > 2048:
            raise PayloadError(f"`MediaUrl{index}` is longer than 2048 characters", field=f"MediaUrl{index}")
        content_type = fields.get(f"MediaContentType{index}", "").strip()[:255] or None
        attachments.append(Attachment(url=url, content_type=content_type))
    return attachments


def _segments(fields: Mapping[str, str]) -> int | None:
    segments = optional_int(fields, "NumSegments")
    if segments is not None and not 1 <= segments <= 255:
        raise PayloadError(f"`NumSegments` must be between 1 and 255, not {segments}", field="NumSegments")
    return segments


def _status(fields: Mapping[str, str]) -> tuple[InteractionStatus, int, bool]:
    """(status, revision, inbound) of a delivery."""
    name = "MessageStatus" if fields.get("MessageStatus") else "SmsStatus"
    raw = fields.get(name, "").strip().lower()
    if not raw or raw in _INBOUND_STATUSES:
        return "received", 0, True
    if raw not in _OUTBOUND_STATUSES:
        raise PayloadError(f"`{name}` is not a Twilio message status: {raw[:40]!r}", field=name)
    status, rank = _OUTBOUND_STATUSES[raw]
    return status, rank, False


def normalize_message(fields: Mapping[str, str], received_at: datetime) -> InteractionEvent:
    """One incoming message or one status callback → the event of its message."""
    for name, value in fields.items():
        if "\x00" in name + value:
            field = name.replace("\x00", "")[:200] or "$"
            raise PayloadError(f"`{field[:60]}` contains a NUL character", field=field)
    message_sid = _message_sid(fields)
    status, revision, inbound = _status(fields)
    sender = _address(fields, "From", needed=inbound)
    recipient = _address(fields, "To", needed=True)
    customer_address, business_address = (sender, recipient) if inbound else (recipient, sender)
    attachments = _media(fields)
    whatsapp = any((a or "").lower().startswith(_WHATSAPP) for a in (sender, recipient))
    transport = "whatsapp" if whatsapp else ("mms" if attachments else "sms")
    display_name = (fields.get("ProfileName", "").strip()[:256] or None) if inbound else None
    body = fields.get("Body") or None
    attributes = {ours: fields[theirs][:4096] for theirs, ours in _ATTRIBUTES.items() if fields.get(theirs)}
    if not inbound:
        attributes["message_status"] = fields.get("MessageStatus") or fields.get("SmsStatus", "")
    identifiers = [Identifier(kind="phone", value=customer_address)] if customer_address else []
    return InteractionEvent(
        source=SOURCE,
        external_id=message_sid,
        channel="sms",
        direction="inbound" if inbound else "outbound",
        occurred_at=received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC),
        status=status,
        revision=revision,
        customer=CustomerParty(identifiers=identifiers, display_name=display_name),
        endpoint=_endpoint(business_address),
        text=body,
        snippet=body[:1000] if body else None,
        attachments=attachments,
        attributes=attributes,
        details=SmsDetails(
            transport=transport,
            segments=_segments(fields),
            media_count=len(attachments) if attachments else None,
        ),
    )


class TwilioSmsConnector:
    name: ClassVar[str] = SOURCE
    channel: ClassVar[Channel] = "sms"
    reply: ClassVar[Reply] = Reply(200, "text/xml", b'<?xml version="1.0" encoding="UTF-8"?><Response/>')

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        if not settings.verify:
            return
        try:
            verify_twilio(request, settings)
        except PayloadError as exc:  # a form that cannot be read cannot be signed either
            raise SignatureError(f"the signature cannot be checked: {exc.message}", field=exc.field) from None

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        if request.method == "GET":
            fields = first_values(request.query)
        else:
            if request.content_type not in ("application/x-www-form-urlencoded", ""):
                raise PayloadError(
                    f"Twilio posts application/x-www-form-urlencoded, not {request.content_type}",
                    field="content-type",
                )
            fields = first_values(request.form())
        return Parsed(events=[normalize_message(fields, request.received_at)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Twilio joins the segments of a message before calling the webhook")


connector = TwilioSmsConnector()
