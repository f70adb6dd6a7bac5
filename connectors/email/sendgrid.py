"""SendGrid Inbound Parse (`sendgrid`): SendGrid receives the mail of a hostname whose MX points to
mx.sendgrid.net, parses it and POSTs `multipart/form-data` to the configured URL.

Payload (default mode):
- `headers` (the raw header block), `from`, `to`, `cc`, `subject` (decoded by SendGrid), `text`, `html`;
- `charsets`: JSON map of field → charset (`{"to":"UTF-8","subject":"UTF-8","text":"iso-8859-1",…}`): every field is
  decoded with its declared charset;
- `envelope`: JSON `{"to": ["…"], "from": "…"}` (the SMTP envelope);
- `SPF` (`pass`, `softfail`, …), `dkim` (`{@example.com : pass}`), `sender_ip`, `spam_score`, `spam_report`;
- `attachments` (a count), the files `attachment1` … `attachmentN` and `attachment-info`: JSON map
  `attachmentN` → {`filename`, `name`, `type`, `content-id`}.
"Send Raw" mode: `email` holds the whole MIME message instead of `headers`/`text`/`html`/attachments.

Signature: none — Inbound Parse does not sign. Put HTTP basic credentials in the destination URL
(`https://user:password@unify.example.com/v1/webhooks/sendgrid`) and set the same `basic_auth`.

Normalization: see `connectors.email._message`. The endpoint is the envelope recipient; `SPF: pass` (for the
envelope sender's domain) or a DKIM `pass` for the From domain makes the From address `signed`."""

from __future__ import annotations

import re
from typing import ClassVar, TypeVar

import msgspec

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, WebhookRequest
from connectors._common import check_basic_auth
from connectors._multipart import FormPart, parse_form_data
from connectors.email._message import (
    InboundMail,
    addresses,
    decode_text,
    domain_of,
    header_block,
    parse_mime,
    to_event,
    verdict,
)
from schemas import Attachment, Channel, InteractionEvent

SOURCE = "sendgrid"
T = TypeVar("T")
_ATTACHMENT_FIELD = re.compile(r"^attachment\d+$")


class Envelope(msgspec.Struct):
    to: list[str] = []
    sender: str | None = msgspec.field(default=None, name="from")


class AttachmentInfo(msgspec.Struct):
    filename: str | None = None
    name: str | None = None
    type: str | None = None


_CHARSETS = msgspec.json.Decoder(dict[str, str])
_ENVELOPE = msgspec.json.Decoder(Envelope)
_ATTACHMENT_INFO = msgspec.json.Decoder(dict[str, AttachmentInfo])


def _json(decoder: msgspec.json.Decoder[T], value: str, name: str) -> T:
    try:
        return decoder.decode(value)
    except (msgspec.MsgspecError, UnicodeDecodeError) as exc:
        raise PayloadError(f"`{name}` is not the JSON SendGrid sends: {exc}", field=name) from None


def read_fields(parts: list[FormPart]) -> tuple[dict[str, str], dict[str, FormPart]]:
    """Text fields decoded with their declared charsets, and the raw parts by name (files, `email`)."""
    raw = {p.name: p for p in reversed(parts)}  # the first part of a name wins
    charsets: dict[str, str] = {}
    if "charsets" in raw and raw["charsets"].value.strip():
        charsets = _json(_CHARSETS, decode_text(raw["charsets"].value), "charsets")
    fields = {
        name: decode_text(part.value, charsets.get(name) or part.charset or "utf-8")
        for name, part in raw.items()
        if part.filename is None and not _ATTACHMENT_FIELD.match(name) and name != "email"
    }
    return fields, raw


def dkim_verdicts(value: str | None) -> list[tuple[str, str]]:
    """`{@example.com : pass}` (one or more) → [(result, domain)]."""
    return [
        (result.lower(), domain.lower()) for domain, result in re.findall(r"@([^\s:{},]+)\s*:\s*(\w+)", value or "")
    ]


def _attachments(fields: dict[str, str], raw: dict[str, FormPart]) -> list[Attachment]:
    info: dict[str, AttachmentInfo] = {}
    if fields.get("attachment-info", "").strip():
        info = _json(_ATTACHMENT_INFO, fields["attachment-info"], "attachment-info")
    names = sorted(
        {n for n in raw if _ATTACHMENT_FIELD.match(n)} | set(info), key=lambda n: (len(n), n)
    )  # attachment2 before attachment10
    found = []
    for name in names:
        part, meta = raw.get(name), info.get(name, AttachmentInfo())
        filename = (part.filename if part else None) or meta.filename or meta.name
        content_type = (part.content_type if part else None) or meta.type
        found.append(
            Attachment(
                filename=(filename or "")[:512] or None,
                content_type=(content_type or "")[:255] or None,
                size_bytes=len(part.value) if part else None,
            )
        )
    return found


def normalize(parts: list[FormPart]) -> InboundMail:
    fields, raw = read_fields(parts)
    envelope = _json(_ENVELOPE, fields["envelope"], "envelope") if fields.get("envelope", "").strip() else None
    mail = InboundMail(source=SOURCE)
    if "email" in raw:
        mail.headers, mime = parse_mime(raw["email"].value)
        mail.text, mail.html, mail.attachments = mime.text, mime.html, mime.attachments
        mail.fingerprint = raw["email"].value
    elif "headers" in fields:
        mail.headers = header_block(fields["headers"])
        mail.text, mail.html = fields.get("text") or None, fields.get("html") or None
        mail.attachments = _attachments(fields, raw)
        mail.fingerprint = (fields["headers"] + "\n" + fields.get("text", "")).encode()
        if fields.get("subject"):
            mail.subject = fields["subject"]
        if fields.get("cc", "").strip():
            mail.cc = [address for _, address in addresses(fields["cc"])]
    else:
        raise PayloadError("neither `headers` (default mode) nor `email` (raw mode) was posted", field="headers")
    senders = addresses(fields.get("from"))
    if senders:
        mail.from_name, mail.from_address = senders[0]
    elif not addresses(mail.headers.raw("From")):
        raise PayloadError("`from` is missing or has no address", field="from")
    recipients = (envelope.to if envelope else []) or [a for _, a in addresses(fields.get("to"))]
    mail.recipient = recipients[0].strip() if recipients and recipients[0].strip() else None
    if envelope is not None and envelope.sender is not None:
        mail.envelope_sender = envelope.sender.strip()
    if fields.get("SPF", "").strip():
        spf_domain = domain_of(mail.envelope_sender)
        mail.spf = (fields["SPF"].strip().split()[0].lower(), [spf_domain] if spf_domain else [])
    mail.dkim = verdict(dkim_verdicts(fields.get("dkim")))
    for name in ("sender_ip", "spam_score"):
        if fields.get(name, "").strip():
            mail.attributes[name] = fields[name].strip()
    return mail


class SendGridConnector:
    name: ClassVar[str] = SOURCE
    channel: ClassVar[Channel] = "email"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        check_basic_auth(request, settings)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        parts = parse_form_data(request.header("content-type") or "", request.body)
        return Parsed(events=[to_event(normalize(parts), request.received_at)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("SendGrid never splits a message")


connector = SendGridConnector()
