"""Raw email (`email-mime`): one RFC 5322 message as the request body.

For an MTA pipe (Postfix `pipe`, procmail, Exim transport) or an object-store drop (S3 event → HTTP): POST the
message exactly as received, with `Content-Type: message/rfc822` (`application/octet-stream` and `text/plain` are
accepted too).

Verification — the sender proves it knows a configured credential:
- `basic_auth` set (`user:password`): HTTP basic authentication on the URL;
- `secret` set: `X-Unify-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, e.g.
  `curl -H "X-Unify-Signature: sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r msg.eml | cut -d' ' -f1)"`;
- both set: both are required.

Normalization: the message is parsed with the stdlib `email` package; see `connectors.email._message`. SPF/DKIM are
trusted only from an `Authentication-Results` header whose authserv-id equals the option `trusted_authserv_id` (the
receiving MTA's name), because anyone can put such a header in a message. `external_id` is the Message-ID, or a
SHA-256 of the message bytes when it has none."""

from __future__ import annotations

import hashlib
import hmac
from typing import ClassVar

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import check_basic_auth, same_secret
from connectors.email._message import InboundMail, authentication_results, parse_mime, to_event
from schemas import Channel, InteractionEvent

SIGNATURE_HEADER = "x-unify-signature"
_MEDIA_TYPES = ("message/rfc822", "application/octet-stream", "text/plain", "")
_MESSAGE_HEADERS = ("from", "date", "message-id", "subject", "to", "received", "return-path")


def body_signature(secret: str, body: bytes) -> str:
    """The `X-Unify-Signature` value of a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class MimeConnector:
    name: ClassVar[str] = "email-mime"
    channel: ClassVar[Channel] = "email"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        if not settings.basic_auth and not settings.secret:
            raise SignatureError("the connector has neither basic_auth nor a secret configured, so it cannot verify")
        if settings.basic_auth:
            check_basic_auth(request, settings)
        if settings.secret:
            presented = (request.header(SIGNATURE_HEADER) or "").strip().lower()
            if not presented:
                raise SignatureError("the X-Unify-Signature header is missing", field=SIGNATURE_HEADER)
            if not same_secret(body_signature(settings.secret, request.body), presented):
                raise SignatureError("the X-Unify-Signature does not match the body", field=SIGNATURE_HEADER)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        if request.content_type not in _MEDIA_TYPES:
            raise PayloadError(f"send the message as message/rfc822, not {request.content_type}", field="content-type")
        if not request.body.strip():
            raise PayloadError("the body is empty: it must be an RFC 5322 message", field="$")
        headers, parts = parse_mime(request.body)
        if not any(headers.raw(name) is not None for name in _MESSAGE_HEADERS):
            raise PayloadError("the body is not an RFC 5322 message (no From, Date or Message-ID header)", field="$")
        spf, dkim = authentication_results(headers, settings.options.get("trusted_authserv_id"))
        mail = InboundMail(
            source=self.name,
            headers=headers,
            text=parts.text,
            html=parts.html,
            attachments=parts.attachments,
            spf=spf,
            dkim=dkim,
            fingerprint=request.body,
        )
        return Parsed(events=[to_event(mail, request.received_at)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("emails are never split")


connector = MimeConnector()
