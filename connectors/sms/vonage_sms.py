"""Vonage (Nexmo) SMS API: inbound messages to a virtual number.

Payload: Vonage calls the account's inbound-SMS webhook with GET query parameters, a POST
`application/x-www-form-urlencoded` form, or a POST JSON object (the method is chosen in the dashboard), all with
the same string fields:

- `msisdn` (the sender, E.164 without `+`), `to` (the virtual number), `messageId`, `api-key`;
- `type` (`text`, `unicode` or `binary`), `text` and `keyword` (its first word, upper-case); binary messages carry
  `data` and `udh` instead;
- `message-timestamp` (`2020-01-01 12:00:00`, UTC);
- signed webhooks only: `timestamp` (Unix seconds), `nonce` and `sig`;
- parts of a concatenated message: `concat` (`true`), `concat-ref` (shared by all parts), `concat-part` (from 1)
  and `concat-total`. Parts may arrive in any order.

Signature: `sig` is computed over every other parameter, sorted by name, as `&name=value` (with `&` and `=` in
values replaced by `_`). With the dashboard's default "MD5 hash" method the signature secret is appended and the
MD5 hex digest taken; with "MD5/SHA1/SHA-256/SHA-512 HMAC" the string is HMAC'd with the secret (hex, compared
case-insensitively). The method is the `signature_method` option (`md5hash`, `md5`, `sha1`, `sha256`, `sha512`).
The signed `timestamp` must be within `max_skew_seconds` of now. Vonage wants a 200 or 204 back.

Normalization: an inbound `received` message keyed by `messageId`, the customer being `+<msisdn>` (an unverified
caller id), the endpoint `+<to>`. Each part of a concatenated message becomes a fragment; once all parts are there
they are joined, in part order, into one message keyed by the `messageId` of part 1 (so a re-delivered part
never makes a second message)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

import msgspec

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, SignatureError, WebhookRequest
from connectors._common import (
    check_timestamp_fresh,
    epoch_datetime,
    first_values,
    optional_int,
    parse_iso_datetime,
    require_secret,
    required,
    same_secret,
)
from schemas import Channel, CustomerParty, Endpoint, Identifier, InteractionEvent, SmsDetails

SOURCE = "vonage-sms"
MD5_HASH = "md5hash"
_HMAC_DIGESTS = ("md5", "sha1", "sha256", "sha512")
_JSON_SCALARS = msgspec.json.Decoder(dict[str, str | int | float | bool | None])
_ATTRIBUTES = {"api-key": "api_key", "type": "type", "udh": "udh", "data": "data"}


# ---------------------------------------------------------------------------------------------------------------
# Payload view: the parameters as one flat dict of strings, wherever Vonage put them


def _json_params(body: bytes) -> dict[str, str]:
    try:
        decoded = _JSON_SCALARS.decode(body)
    except msgspec.MsgspecError as exc:
        raise PayloadError(f"the body is not a flat JSON object of Vonage parameters: {exc}", field="$") from None
    params: dict[str, str] = {}
    for name, value in decoded.items():
        if value is None:
            params[name] = ""
        elif isinstance(value, bool):
            params[name] = "true" if value else "false"
        else:
            params[name] = str(value)
    return params


def read_params(request: WebhookRequest) -> tuple[dict[str, str], str]:
    """The webhook's parameters, and the prefix naming them in errors (`$.` for JSON bodies)."""
    if request.method == "GET":
        return first_values(request.query), ""
    media = request.content_type
    if media == "application/json" or media.endswith("+json"):
        return _json_params(request.body), "$."
    if media in ("application/x-www-form-urlencoded", ""):
        return first_values(request.form()), ""
    raise PayloadError(f"Vonage sends a form or JSON, not {media}", field="content-type")


# ---------------------------------------------------------------------------------------------------------------
# Signature


def signature_method(setting: str) -> str:
    """`md5hash` or an HMAC digest name, from the setting as written in the dashboard ("SHA-256 HMAC" → sha256)."""
    key = re.sub(r"[\s_-]", "", setting.lower())
    if key in (MD5_HASH, "md5hashing"):
        return MD5_HASH
    key = key.removesuffix("hmac").removeprefix("hmac")
    if key not in _HMAC_DIGESTS:
        raise SignatureError(
            f"unknown signature_method {setting[:40]!r}: use md5hash, md5, sha1, sha256 or sha512",
            field="signature_method",
        )
    return key


def vonage_signature(params: Mapping[str, str], secret: str, method: str = MD5_HASH) -> str:
    """The lower-case hex `sig` Vonage computes for `params` (any `sig` among them is left out)."""
    pairs = sorted((name, value) for name, value in params.items() if name != "sig")
    signed = "".join(f"&{name}={value.replace('&', '_').replace('=', '_')}" for name, value in pairs)
    if method == MD5_HASH:
        return hashlib.md5((signed + secret).encode()).hexdigest()
    return hmac.new(secret.encode(), signed.encode(), method).hexdigest()


def verify_params(params: Mapping[str, str], prefix: str, request: WebhookRequest, settings: ConnectorSettings) -> None:
    secret = require_secret(settings, "signature secret")
    method = signature_method(settings.options.get("signature_method", MD5_HASH))
    presented = params.get("sig", "").strip()
    if not presented:
        raise SignatureError("the `sig` parameter is missing (are signed webhooks enabled?)", field=f"{prefix}sig")
    if not same_secret(vonage_signature(params, secret, method), presented.lower()):
        raise SignatureError(f"`sig` does not match this request ({method})", field=f"{prefix}sig")
    stamp = params.get("timestamp", "").strip()
    if not stamp:
        raise SignatureError("the signed `timestamp` is missing", field=f"{prefix}timestamp")
    try:
        signed_at = epoch_datetime(stamp, "timestamp", prefix=prefix)
    except PayloadError as exc:
        raise SignatureError(exc.message, field=exc.field) from None
    check_timestamp_fresh(signed_at, request, settings, f"{prefix}timestamp")


# ---------------------------------------------------------------------------------------------------------------
# Normalization


def _number(params: Mapping[str, str], name: str, prefix: str) -> str:
    """`msisdn`/`to` are E.164 digits without `+`; alphanumeric senders are kept as they are."""
    value = required(params, name, prefix=prefix).strip()
    if len(value) > 64:
        raise PayloadError(f"`{name}` is longer than 64 characters", field=f"{prefix}{name}")
    return f"+{value}" if value.isdigit() else value


def _received_at(params: Mapping[str, str], prefix: str) -> datetime:
    if params.get("message-timestamp", "").strip():
        return parse_iso_datetime(params["message-timestamp"], "message-timestamp", prefix=prefix)
    if params.get("timestamp", "").strip():
        return epoch_datetime(params["timestamp"], "timestamp", prefix=prefix)
    raise PayloadError("`message-timestamp` is missing", field=f"{prefix}message-timestamp")


def _text(params: Mapping[str, str], prefix: str) -> str | None:
    if params.get("type", "text").strip().lower() == "binary":
        return None
    if "text" not in params:
        raise PayloadError("`text` is missing", field=f"{prefix}text")
    return params["text"]


def _concat(params: Mapping[str, str], prefix: str) -> tuple[str, int, int] | None:
    """(concat-ref, concat-part, concat-total) of a part of a concatenated message, else None."""
    if params.get("concat", "").strip().lower() != "true":
        return None
    ref = required(params, "concat-ref", prefix=prefix).strip()
    total = optional_int(params, "concat-total", prefix=prefix)
    if total is None or not 1 <= total <= 255:
        raise PayloadError("`concat-total` must be a number of parts from 1 to 255", field=f"{prefix}concat-total")
    part = optional_int(params, "concat-part", prefix=prefix)
    if part is None or not 1 <= part <= total:
        raise PayloadError(f"`concat-part` must be from 1 to concat-total ({total})", field=f"{prefix}concat-part")
    return ref, part, total


def normalize_message(params: Mapping[str, str], prefix: str = "") -> Parsed:
    """One inbound message → an event, or a fragment of the message when it is one part of a concatenated SMS."""
    for name, value in params.items():
        if "\x00" in name + value:
            field = name.replace("\x00", "")[:200] or "$"
            raise PayloadError(f"`{field[:60]}` contains a NUL character", field=f"{prefix}{field}")
    customer = _number(params, "msisdn", prefix)
    endpoint = _number(params, "to", prefix)
    message_id = required(params, "messageId", prefix=prefix).strip()
    if len(message_id) > 512:
        raise PayloadError("`messageId` is longer than 512 characters", field=f"{prefix}messageId")
    occurred_at = _received_at(params, prefix)
    text = _text(params, prefix)
    concat = _concat(params, prefix)
    attributes = {ours: params[theirs][:4096] for theirs, ours in _ATTRIBUTES.items() if params.get(theirs)}
    if concat:
        attributes |= {"concat_ref": concat[0][:4096], "concat_part": str(concat[1])}
    event = InteractionEvent(
        source=SOURCE,
        external_id=message_id,
        channel="sms",
        direction="inbound",
        occurred_at=occurred_at,
        status="received",
        customer=CustomerParty(identifiers=[Identifier(kind="phone", value=customer)]),
        endpoint=Endpoint(kind="phone", value=endpoint),
        text=text or None,
        snippet=text[:1000] if text else None,
        attributes=attributes,
        details=SmsDetails(
            transport="sms",
            segments=concat[2] if concat else None,
            keyword=params.get("keyword", "").strip()[:64] or None,
        ),
    )
    if concat is None:
        return Parsed(events=[event])
    ref, part, total = concat
    group = f"{customer}|{endpoint}|{ref}|{total}"
    return Parsed(fragments=[Fragment(group=group, index=part, total=total, text=text or "", event=event)])


def join_parts(fragments: list[Fragment]) -> InteractionEvent:
    """All parts of one concatenated message, sorted by part number → one message, keyed by part 1's id."""
    expected = list(range(1, len(fragments) + 1))
    if not fragments or [f.index for f in fragments] != expected or any(f.total != len(fragments) for f in fragments):
        found = ", ".join(str(f.index) for f in fragments)
        raise PayloadError(f"the parts of a concatenated message are incomplete ({found})", field="concat-part")
    first = fragments[0].event
    text = "".join(f.text for f in fragments)
    attributes = {name: value for name, value in first.attributes.items() if name != "concat_part"}
    attributes["message_ids"] = ",".join(f.event.external_id for f in fragments)[:4096]
    return msgspec.structs.replace(
        first,
        occurred_at=min(f.event.occurred_at for f in fragments),
        text=text or None,
        snippet=text[:1000] or None,
        attributes=attributes,
    )


class VonageSmsConnector:
    name: ClassVar[str] = SOURCE
    channel: ClassVar[Channel] = "sms"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        if not settings.verify:
            return
        try:
            params, prefix = read_params(request)
        except PayloadError as exc:  # parameters that cannot be read cannot be signed either
            raise SignatureError(f"the signature cannot be checked: {exc.message}", field=exc.field) from None
        verify_params(params, prefix, request, settings)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        params, prefix = read_params(request)
        return normalize_message(params, prefix)

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        return join_parts(fragments)


connector = VonageSmsConnector()
