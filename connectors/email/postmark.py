"""Postmark inbound webhook (`postmark`): Postmark parses each message sent to the server's inbound address (or
inbound domain) and POSTs it as JSON.

Payload: `MessageID` (Postmark's id), `From`, `FromName`, `FromFull` {`Email`, `Name`, `MailboxHash`}, `To`,
`ToFull` [...], `Cc`, `CcFull` [...], `OriginalRecipient`, `ReplyTo`, `Subject`, `Date` (as the sender wrote it),
`TextBody`, `HtmlBody`, `StrippedTextReply`, `MessageStream`, `MailboxHash`, `Tag`, `Headers` [{`Name`, `Value`}]
(the other headers: `Message-ID`, `In-Reply-To`, `References`, `Received-SPF`, SpamAssassin's `X-Spam-Tests`, …) and
`Attachments` [{`Name`, `Content` (base64), `ContentType`, `ContentLength`}].

Signature: none — Postmark does not sign. Put HTTP basic credentials in the webhook URL
(`https://user:password@unify.example.com/v1/webhooks/postmark`) and set the same `basic_auth`.

Normalization: see `connectors.email._message`. `external_id` is Postmark's `MessageID`; threading uses the
`Message-ID` of `Headers`. The From address is `signed` when Postmark's `Received-SPF` (the first one, which Postmark
prepends) passes for the From domain, when SpamAssassin reports `DKIM_VALID_AU` (a valid signature of the author's
domain) or `DKIM_VALID` for a From-domain `d=`, or from a trusted `Authentication-Results` (option
`trusted_authserv_id`). `StrippedTextReply` gives the snippet."""

from __future__ import annotations

import re
from typing import ClassVar

import msgspec

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, WebhookRequest
from connectors._common import check_basic_auth
from connectors.email._message import (
    Headers,
    InboundMail,
    Verdict,
    addresses,
    authentication_results,
    dkim_domains,
    domain_of,
    to_event,
)
from schemas import Attachment, Channel, InteractionEvent

SOURCE = "postmark"


# ---------------------------------------------------------------------------------------------------------------
# Payload view


class Mailbox(msgspec.Struct):
    Email: str | None = None
    Name: str | None = None
    MailboxHash: str | None = None


class Header(msgspec.Struct):
    Name: str = ""
    Value: str | None = None


class File(msgspec.Struct):
    Name: str | None = None
    ContentType: str | None = None
    ContentLength: int | None = None
    Content: str | None = None


class InboundMessage(msgspec.Struct):
    MessageID: str | None = None
    From: str | None = None
    FromName: str | None = None
    FromFull: Mailbox | None = None
    To: str | None = None
    ToFull: list[Mailbox] | None = None
    Cc: str | None = None
    CcFull: list[Mailbox] | None = None
    OriginalRecipient: str | None = None
    Subject: str | None = None
    Date: str | None = None
    TextBody: str | None = None
    HtmlBody: str | None = None
    StrippedTextReply: str | None = None
    MailboxHash: str | None = None
    Tag: str | None = None
    Headers: list[Header] | None = None
    Attachments: list[File] | None = None


_DECODER = msgspec.json.Decoder(InboundMessage)


def decode_message(body: bytes) -> InboundMessage:
    try:
        message = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        path = re.search(r"at `(\$[^`]*)`", str(exc))
        raise PayloadError(f"not a Postmark inbound message: {exc}", field=path[1] if path else "$") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for invalid UTF-8
        raise PayloadError(f"the body is not UTF-8 JSON: {exc}", field="$") from None
    if not (message.MessageID or "").strip():
        raise PayloadError("`MessageID` is missing", field="$.MessageID")
    return message


# ---------------------------------------------------------------------------------------------------------------
# Normalization


def _spf(headers: Headers) -> Verdict | None:
    received = headers.get("Received-SPF")
    if not received:
        return None
    envelope = re.search(r"envelope-from\s*=\s*\"?([^\";\s]+)", received)
    domain = domain_of(envelope[1]) if envelope else ""
    return received.split()[0].lower(), [domain] if domain else []


def _dkim(headers: Headers) -> Verdict | None:
    tests = {t.strip().upper() for t in (headers.get("X-Spam-Tests") or "").split(",")}
    if "DKIM_VALID_AU" in tests:
        return "pass", []
    if "DKIM_VALID" in tests and (signers := dkim_domains(headers)):
        return "pass", signers
    if "DKIM_INVALID" in tests:
        return "fail", []
    return None


def _size(file: File) -> int | None:
    if file.ContentLength is not None and file.ContentLength >= 0:
        return file.ContentLength
    if file.Content:
        return len(file.Content) * 3 // 4 - file.Content[-2:].count("=")
    return None


def normalize(message: InboundMessage, settings: ConnectorSettings) -> InboundMail:
    headers = Headers(tuple((h.Name, h.Value or "") for h in message.Headers or [] if h.Name))
    sender = message.FromFull or Mailbox(Email=message.From, Name=message.FromName)
    recipients = [m.Email for m in message.ToFull or [] if m.Email] or [message.To or ""]
    spf, dkim = authentication_results(headers, settings.options.get("trusted_authserv_id"))
    mail = InboundMail(
        source=SOURCE,
        headers=headers,
        platform_id=(message.MessageID or "").strip(),
        from_name=(sender.Name or message.FromName or "").strip(),
        from_address=(sender.Email or message.From or "").strip(),
        recipient=(message.OriginalRecipient or recipients[0]).strip() or None,
        cc=[m.Email.strip() for m in message.CcFull or [] if m.Email and m.Email.strip()]
        or [address for _, address in addresses(message.Cc)],
        subject=message.Subject or None,
        date=message.Date or "",
        text=message.TextBody or None,
        html=message.HtmlBody or None,
        reply_text=message.StrippedTextReply or None,
        attachments=[
            Attachment(
                filename=(f.Name or "")[:512] or None,
                content_type=(f.ContentType or "")[:255] or None,
                size_bytes=_size(f),
            )
            for f in message.Attachments or []
        ],
        spf=spf or _spf(headers),
        dkim=dkim or _dkim(headers),
    )
    for name, value in (("mailbox_hash", message.MailboxHash), ("tag", message.Tag)):
        if value:
            mail.attributes[name] = value
    return mail


class PostmarkConnector:
    name: ClassVar[str] = SOURCE
    channel: ClassVar[Channel] = "email"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        check_basic_auth(request, settings)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        if request.content_type not in ("application/json", ""):
            raise PayloadError(f"Postmark posts JSON, not {request.content_type}", field="content-type")
        mail = normalize(decode_message(request.body), settings)
        return Parsed(events=[to_event(mail, request.received_at)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Postmark never splits a message")


connector = PostmarkConnector()
