"""Mailgun inbound routes (`mailgun`): a route's `forward("https://…/v1/webhooks/mailgun")` action POSTs every
message it receives.

Payload: `application/x-www-form-urlencoded`, or `multipart/form-data` when the message has attachments:
- `sender` (SMTP MAIL FROM), `from` (the From header, `"Bob" <bob@example.com>`), `recipient` (SMTP RCPT TO),
  `subject`;
- `body-plain`, `stripped-text` (the reply without quoted parts), `stripped-signature`, `body-html`;
- `message-headers`: a JSON list of `[name, value]` pairs in message order — `Message-Id`, `In-Reply-To`,
  `References`, `Date`, `Cc`, and Mailgun's own `X-Mailgun-Spf` / `X-Mailgun-Dkim-Check-Result` (`Pass`, `Fail`, …);
  `Message-Id`, `In-Reply-To` and `References` are also sent as fields of their own;
- `attachment-count` and the files `attachment-1` … `attachment-N`;
- `timestamp`, `token`, `signature`.
Variants: a forward URL ending in `mime` (`…/v1/webhooks/mailgun?format=mime`) receives the whole message in
`body-mime` instead of the parsed fields; `store(notify=…)` sends `attachments` as JSON
(`[{"url", "content-type", "name", "size"}]`) and `message-url`. Mailgun wants a 200; 406 would stop retries.

Signature: `signature` = hex HMAC-SHA256(the HTTP webhook signing key, `timestamp` + `token`). The timestamp must be
within `max_skew_seconds` of now, and a token is accepted once (it is the replay token).

Normalization: see `connectors.email._message`; `X-Mailgun-Spf: Pass` (for the `sender` domain) or
`X-Mailgun-Dkim-Check-Result: Pass` (for the DKIM-Signature `d=` domains) makes the From address `signed`;
`stripped-text` gives the snippet."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import parse_qsl

import msgspec

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import check_timestamp_fresh, epoch_datetime, require_secret, same_secret
from connectors._multipart import parse_form_data
from connectors.email._message import (
    Headers,
    InboundMail,
    addresses,
    decode_text,
    dkim_domains,
    domain_of,
    parse_mime,
    to_event,
)
from schemas import Attachment, Channel, InteractionEvent

SOURCE = "mailgun"
_ATTACHMENT_FIELD = re.compile(r"^attachment-\d+$")
_THREAD_FIELDS = ("Message-Id", "In-Reply-To", "References")


class _StoredAttachment(msgspec.Struct):
    url: str | None = None
    name: str | None = None
    size: int | None = None
    content_type: str | None = msgspec.field(default=None, name="content-type")


_HEADER_PAIRS = msgspec.json.Decoder(list[tuple[str, str]])
_STORED_ATTACHMENTS = msgspec.json.Decoder(list[_StoredAttachment])


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Payload view


@dataclass
class Delivery:
    """The POSTed fields (decoded as UTF-8), the attached files, and the raw message of the MIME variant."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[Attachment] = field(default_factory=list)
    mime: bytes | None = None


def read_delivery(request: WebhookRequest) -> Delivery:
    delivery = Delivery()
    if request.content_type == "multipart/form-data":
        pairs = []
        for part in parse_form_data(request.header("content-type") or "", request.body):
            if _ATTACHMENT_FIELD.match(part.name) or part.filename is not None:
                delivery.files.append(
                    Attachment(filename=part.filename, content_type=part.content_type, size_bytes=len(part.value))
                )
            else:
                pairs.append((part.name, part.value))
    elif request.content_type in ("application/x-www-form-urlencoded", ""):
        try:  # latin-1 keeps every byte, so `body-mime` arrives exactly as Mailgun percent-encoded it
            text_pairs = parse_qsl(
                request.body.decode("latin-1"), keep_blank_values=True, strict_parsing=True, encoding="latin-1"
            )
        except ValueError as exc:
            raise PayloadError(f"the form body is malformed: {exc}") from None
        pairs = [(name.encode("latin-1").decode("utf-8", "replace"), v.encode("latin-1")) for name, v in text_pairs]
    else:
        raise PayloadError(f"Mailgun posts a form, not {request.content_type}", field="content-type")
    for name, value in pairs:
        if name == "body-mime":
            delivery.mime = delivery.mime or value
        else:
            delivery.fields.setdefault(name, decode_text(value, "utf-8"))
    return delivery


def _message_headers(fields: dict[str, str]) -> Headers:
    pairs: list[tuple[str, str]] = []
    if fields.get("message-headers", "").strip():
        try:
            pairs = _HEADER_PAIRS.decode(fields["message-headers"])
        except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
            raise PayloadError(f"not a JSON list of [name, value] pairs: {exc}", field="message-headers") from None
    present = {name.lower() for name, _ in pairs}
    pairs += [(name, fields[name]) for name in _THREAD_FIELDS if fields.get(name) and name.lower() not in present]
    return Headers(tuple(pairs))


def _stored_attachments(fields: dict[str, str]) -> list[Attachment]:
    if not fields.get("attachments", "").strip():
        return []
    try:
        stored = _STORED_ATTACHMENTS.decode(fields["attachments"])
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not a JSON list of stored attachments: {exc}", field="attachments") from None
    return [
        Attachment(
            filename=(a.name or "")[:512] or None,
            content_type=(a.content_type or "")[:255] or None,
            size_bytes=a.size if a.size is not None and a.size >= 0 else None,
            url=(a.url or "")[:2048] or None,
        )
        for a in stored
    ]


# ---------------------------------------------------------------------------------------------------------------
# The connector


class MailgunConnector:
    name: ClassVar[str] = SOURCE
    channel: ClassVar[Channel] = "email"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        signing_key = require_secret(settings, "HTTP webhook signing key")
        try:
            fields = read_delivery(request).fields
        except PayloadError as exc:
            raise SignatureError(f"the signed fields cannot be read: {exc.message}", field=exc.field) from None
        values = {name: fields.get(name, "").strip() for name in ("timestamp", "token", "signature")}
        for name, value in values.items():
            if not value:
                raise SignatureError(f"the `{name}` field is missing", field=name)
        expected = mailgun_signature(signing_key, values["timestamp"], values["token"])
        if not same_secret(expected, values["signature"].lower()):
            raise SignatureError("the `signature` does not match timestamp + token", field="signature")
        try:
            signed_at = epoch_datetime(values["timestamp"], "timestamp")
        except PayloadError as exc:
            raise SignatureError(exc.message, field=exc.field) from None
        check_timestamp_fresh(signed_at, request, settings, "timestamp")

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        delivery = read_delivery(request)
        fields = delivery.fields
        recipient = fields.get("recipient", "").strip()
        if not recipient:
            raise PayloadError("`recipient` is missing", field="recipient")
        sender = fields.get("sender")
        mail = InboundMail(source=SOURCE, recipient=recipient, envelope_sender=sender.strip() if sender else sender)
        if delivery.mime is not None:
            mail.headers, parts = parse_mime(delivery.mime)
            mail.text, mail.html, mail.attachments = parts.text, parts.html, parts.attachments
            mail.fingerprint = delivery.mime
        else:
            mail.headers = _message_headers(fields)
            mail.text, mail.html = fields.get("body-plain"), fields.get("body-html")
            mail.reply_text = fields.get("stripped-text")
            mail.attachments = delivery.files + _stored_attachments(fields)
            mail.fingerprint = "\n".join(fields.get(n, "") for n in ("from", "subject", "body-plain")).encode()
        senders = addresses(fields.get("from"))
        if senders:
            mail.from_name, mail.from_address = senders[0]
        elif not addresses(mail.headers.raw("From")):
            raise PayloadError("`from` is missing or has no address", field="from")
        if fields.get("subject"):
            mail.subject = fields["subject"]
        spf, dkim = mail.headers.get("X-Mailgun-Spf"), mail.headers.get("X-Mailgun-Dkim-Check-Result")
        mail.spf = (spf.lower(), [d] if (d := domain_of(sender)) else []) if spf else None
        mail.dkim = (dkim.lower(), dkim_domains(mail.headers)) if dkim else None
        if fields.get("message-url"):
            mail.attributes["message_url"] = fields["message-url"]
        token = fields.get("token", "").strip() or None
        return Parsed(events=[to_event(mail, request.received_at)], replay_token=token)

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Mailgun never splits a message")


connector = MailgunConnector()
