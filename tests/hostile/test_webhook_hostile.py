"""Hostile deliveries against `POST /v1/webhooks/{connector}` for several connectors (chat, intercom, twilio-sms,
mailgun, email-mime, postmark, sendgrid): a 4xx problem naming the cause or a handled 2xx; never a 5xx; the raw body
kept with its status and error. Signatures are valid unless the case is about the signature, so that the hostile
part reaches the parser."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from connectors.email.mailgun import mailgun_signature
from tests.hostile._support import (
    MAILGUN_KEY,
    MTA,
    POSTMARK,
    SENDGRID,
    assert_handled,
    basic,
    chat_headers,
    configure_connectors,
    intercom_headers,
    twilio_headers,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
Delivery = tuple[str, bytes, dict[str, str], set[int]]  # connector, body, headers, accepted statuses


# --- chat (unify's own JSON, HMAC over timestamp + body) --------------------------------------------------------

CHAT = json.loads((FIXTURES / "chat" / "message.json").read_bytes())


def _chat(body: bytes, expect: set[int], **header_options: str) -> Delivery:
    return "chat", body, chat_headers(body, **header_options), expect


def _chat_with(expect: set[int], **changes: object) -> Callable[[], Delivery]:
    return lambda: _chat(json.dumps(CHAT | changes).encode(), expect)


CHAT_BODY = json.dumps(CHAT).encode()

# --- intercom (JSON, X-Hub-Signature over the body) ----------------------------------------------------------------

INTERCOM = json.loads((FIXTURES / "intercom" / "conversation.user.created.json").read_bytes())


def _intercom_created_at(value: object, expect: set[int]) -> Callable[[], Delivery]:
    def build() -> Delivery:
        payload = json.loads(json.dumps(INTERCOM))
        payload["data"]["item"]["created_at"] = value
        payload["data"]["item"]["source"]["created_at"] = value
        body = json.dumps(payload).encode()
        return "intercom", body, intercom_headers(body), expect

    return build


# --- twilio-sms (form, HMAC over URL + sorted params) -----------------------------------------------------------

TWILIO = (FIXTURES / "twilio-sms" / "incoming-sms.txt").read_text().strip()


def _twilio(body: bytes, expect: set[int], **options: str) -> Callable[[], Delivery]:
    return lambda: ("twilio-sms", body, twilio_headers(body, **options), expect)


def _twilio_with(expect: set[int], extra: str) -> Callable[[], Delivery]:
    return _twilio((extra + "&" + TWILIO).encode(), expect)  # first: a repeated name's first value counts


# --- mailgun (form; signature over timestamp + token; the token is single-use) --------------------------------------


def mailgun_body(*, timestamp: str | None = None, token: str | None = None, **fields: str) -> bytes:
    stamp, token = timestamp or str(int(time.time())), token or secrets.token_hex(25)
    form = {
        "recipient": "support@acme.test",
        "sender": "eve@example.com",
        "from": "Eve <eve@example.com>",
        "subject": "Hello",
        "body-plain": "Hi there",
        "Message-Id": f"<{secrets.token_hex(8)}@example.com>",
    } | fields
    form |= {"timestamp": stamp, "token": token, "signature": mailgun_signature(MAILGUN_KEY, stamp, token)}
    return urlencode(form).encode()


def _mailgun(expect: set[int], **fields: str) -> Callable[[], Delivery]:
    def build() -> Delivery:
        body = mailgun_body(**fields)
        return "mailgun", body, {"Content-Type": "application/x-www-form-urlencoded"}, expect

    return build


# --- email-mime (raw RFC 5322, basic auth) ---------------------------------------------------------------------------


def _eml(headers: str, body: str = "Hello.\r\n", *, raw: bytes | None = None) -> bytes:
    if raw is not None:
        return raw
    base = {
        "From": "Eve <eve@example.com>",
        "To": "support@acme.test",
        "Subject": "Hello",
        "Date": "Mon, 02 Nov 2026 09:30:00 +0000",
        "Message-ID": f"<{secrets.token_hex(8)}@example.com>",
    }
    given = {line.split(":", 1)[0].strip().lower() for line in headers.split("\n")}
    lines = [f"{name}: {value}" for name, value in base.items() if name.lower() not in given]
    return ("\r\n".join([*lines, *filter(None, headers.split("\n"))]) + "\r\n\r\n" + body).encode("utf-8")


def _mime(expect: set[int], headers: str = "", body: str = "Hello.\r\n", *, raw: bytes | None = None):  # type: ignore[no-untyped-def]
    return lambda: (
        "email-mime",
        _eml(headers, body, raw=raw),
        {"Content-Type": "message/rfc822", **basic(MTA)},
        expect,
    )


# --- postmark (JSON, basic auth) ---------------------------------------------------------------------------------

POSTMARK_JSON = json.loads((FIXTURES / "postmark" / "inbound.json").read_bytes())


def _postmark(expect: set[int], body: bytes | None = None, content_type: str = "application/json", **changes: object):  # type: ignore[no-untyped-def]
    data = body if body is not None else json.dumps(POSTMARK_JSON | changes).encode()
    return lambda: ("postmark", data, {"Content-Type": content_type, **basic(POSTMARK)}, expect)


# --- sendgrid (multipart, basic auth) -----------------------------------------------------------------------------


def _multipart(fields: dict[str, bytes], boundary: str = "xYzZY") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


SENDGRID_FIELDS = {
    "headers": b"From: Eve <eve@example.com>\r\nTo: support@parse.acme.test\r\nSubject: Hello\r\n"
    b"Message-ID: <sg-1@example.com>\r\nDate: Mon, 02 Nov 2026 09:30:00 +0000\r\n",
    "from": b"Eve <eve@example.com>",
    "to": b"support@parse.acme.test",
    "subject": b"Hello",
    "text": b"Hi there",
    "envelope": b'{"to":["support@parse.acme.test"],"from":"eve@example.com"}',
    "charsets": b'{"to":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}',
}


def _sendgrid(expect: set[int], content_type: str = "multipart/form-data; boundary=xYzZY", **fields: bytes):  # type: ignore[no-untyped-def]
    body = _multipart(SENDGRID_FIELDS | fields)
    return lambda: ("sendgrid", body, {"Content-Type": content_type, **basic(SENDGRID)}, expect)


FAR_TIMESTAMPS = {
    "year-0001-east": "0001-01-01T00:00:00+05:00",
    "year-0001": "0001-01-01T00:00:00Z",
    "year-9999-west": "9999-12-31T23:59:59-05:00",
    "year-9999": "9999-12-31T23:59:59Z",
    "epoch-0": "1970-01-01T00:00:00Z",
}

CASES: dict[str, Callable[[], Delivery]] = {
    # --- chat: malformed, deep, wrong types and encodings
    "chat-truncated-json": lambda: _chat(CHAT_BODY[: len(CHAT_BODY) // 2], {400}),
    "chat-nested-arrays-30k": lambda: _chat(b"[" * 30_000 + b"]" * 30_000, {400}),
    "chat-nested-objects-10k": lambda: _chat(b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {400}),
    "chat-content-type-text-plain": lambda: _chat(CHAT_BODY, {400, 200}, content_type="text/plain"),
    "chat-content-type-multipart": lambda: _chat(CHAT_BODY, {400, 200}, content_type="multipart/form-data; boundary=x"),
    "chat-content-type-missing": lambda: (
        "chat",
        CHAT_BODY,
        {k: v for k, v in chat_headers(CHAT_BODY).items() if k != "Content-Type"},
        {400, 200},
    ),
    "chat-invalid-utf8": lambda: _chat(CHAT_BODY.replace(b"parcel", b"parc\xff\xfel"), {400}),
    "chat-latin1-declared-latin1": lambda: _chat(
        CHAT_BODY.replace(b"Dana Reyes", "Dána Réyes".encode("latin-1")),
        {400},
        content_type="application/json; charset=latin-1",
    ),
    "chat-nul-in-text": _chat_with({400, 200}, text="a\x00b"),  # cleaned: NUL dropped
    "chat-nul-in-message-id": _chat_with({400, 200}, message_id="m\x001"),
    "chat-raw-nul-byte": lambda: _chat(CHAT_BODY[:10] + b"\x00" + CHAT_BODY[10:], {400}),
    "chat-number-as-message-id": _chat_with({400, 200}, message_id=40017),
    "chat-string-as-author-list": _chat_with({400}, author=["customer"]),
    "chat-phone-10kb": _chat_with({400}, phone="5" * 10_000),
    "chat-email-10kb": _chat_with({400}, email="a" * 10_000 + "@example.com"),
    "chat-150-messages-one-delivery": lambda: _chat(
        json.dumps([CHAT | {"message_id": f"m-{i}", "text": None} for i in range(150)]).encode(), {400, 200}
    ),
    "chat-duplicate-key-author": lambda: _chat(CHAT_BODY[:-2] + b', "author": "robot"}', {400}),
    "chat-duplicate-key-message-id": lambda: _chat(CHAT_BODY[:-2] + b', "message_id": "m-other"}', {400, 200}),
    **{f"chat-sent-at-{name}": _chat_with({400, 200}, sent_at=value) for name, value in FAR_TIMESTAMPS.items()},
    "chat-sent-at-number-1e20": _chat_with({400}, sent_at=1e20),
    "chat-signed-timestamp-1e20": lambda: _chat(CHAT_BODY, {401}, timestamp="1e20"),
    "chat-signed-timestamp-epoch-0": lambda: _chat(CHAT_BODY, {401}, timestamp="0"),
    "chat-signed-timestamp-nan": lambda: _chat(CHAT_BODY, {401}, timestamp="nan"),
    "chat-signed-timestamp-year-9999": lambda: _chat(CHAT_BODY, {401}, timestamp="253402300799"),
    "chat-signature-for-another-body": lambda: (
        "chat",
        CHAT_BODY.replace(b"parcel", b"packet"),
        chat_headers(CHAT_BODY),
        {401},
    ),
    # --- intercom: epoch timestamps far away
    "intercom-created-at-1e20": _intercom_created_at(1e20, {400}),
    "intercom-created-at-epoch-0": _intercom_created_at(0, {200}),
    "intercom-created-at-year-0001": _intercom_created_at(-62135596800, {400, 200}),
    "intercom-created-at-year-10000": _intercom_created_at(253402300800, {400}),
    "intercom-item-nested-arrays-30k": lambda: (
        "intercom",
        (
            body := b'{"type": "notification_event", "topic": "conversation.user.created", "data": {"item": '
            + b"[" * 30_000
            + b"]" * 30_000
            + b"}}"
        ),
        intercom_headers(body),
        {400},
    ),
    "intercom-created-at-string": _intercom_created_at("yesterday", {400}),
    "intercom-created-at-huge-int": _intercom_created_at(10**30, {400}),
    # --- twilio-sms: forms
    "twilio-16k-form-fields": _twilio_with({400, 401}, "a=b&" * 16_000 + "z=1"),
    "twilio-form-charset-latin1-percent-encoded": lambda: (
        "twilio-sms",
        (body := (TWILIO + "&ProfileName=Jos%E9").encode()),
        twilio_headers(body, content_type="application/x-www-form-urlencoded; charset=iso-8859-1"),
        {200},
    ),
    "twilio-form-raw-latin1-bytes": _twilio((TWILIO + "&ProfileName=Jos").encode() + b"\xe9", {400, 401}),
    "twilio-form-truncated-escape": _twilio_with({200}, "ProfileName=%E"),
    "twilio-form-nul-in-body": _twilio_with({400}, "Body=a%00b"),
    "twilio-form-nul-in-name": _twilio_with({400}, "X%00=1"),
    "twilio-from-10kb": _twilio((TWILIO.replace("From=", "From=5555555555" * 700 + "&Ignored=")).encode(), {400}),
    "twilio-content-type-json": _twilio(TWILIO.encode(), {400}, content_type="application/json"),
    "twilio-content-type-text-plain": _twilio(TWILIO.encode(), {400}, content_type="text/plain"),
    "twilio-content-type-multipart": _twilio(TWILIO.encode(), {400}, content_type="multipart/form-data; boundary=x"),
    "twilio-num-media-huge": _twilio_with({400}, "NumMedia=99999999999999999999999"),
    "twilio-num-segments-string": _twilio_with({400}, "NumSegments=two"),
    "twilio-signature-for-another-url": _twilio(
        TWILIO.encode(), {401}, url="https://attacker.example.com/v1/webhooks/twilio-sms"
    ),
    "twilio-signature-for-another-body": lambda: (
        "twilio-sms",
        (TWILIO + "&Body=changed").encode(),
        twilio_headers(TWILIO.encode()),
        {401},
    ),
    # --- mailgun: header injection, timestamps, wrong types
    "mailgun-crlf-in-from": _mailgun({200, 400}, **{"from": "Eve <eve@example.com>\r\nBcc: victim@example.com"}),
    "mailgun-crlf-in-subject": _mailgun({200}, subject="Hello\r\nFrom: victim@example.com\r\nBcc: victim@example.com"),
    "mailgun-crlf-in-message-headers": _mailgun(
        {200, 400},
        **{"message-headers": json.dumps([["Subject", "x\r\nFrom: victim@example.com"], ["From", "eve@example.com"]])},
    ),
    "mailgun-message-headers-nested-5k": _mailgun({400}, **{"message-headers": "[" * 5_000 + "]" * 5_000}),
    "mailgun-message-headers-numbers": _mailgun({400}, **{"message-headers": "[[1, 2]]"}),
    "mailgun-timestamp-1e20": _mailgun({401}, timestamp="1e20"),
    "mailgun-timestamp-epoch-0": _mailgun({401}, timestamp="0"),
    "mailgun-timestamp-year-9999": _mailgun({401}, timestamp="253402300799"),
    "mailgun-from-10kb": _mailgun({400, 200}, **{"from": "a" * 10_000 + "@example.com"}),
    "mailgun-nul-in-subject": _mailgun({400}, subject="a\x00b"),
    # --- email-mime: header injection, far dates, encodings
    "mime-crlf-encoded-in-from": _mime(
        {200}, "From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40example=2Ecom?= <eve@example.com>"
    ),
    "mime-crlf-encoded-in-subject": _mime({200}, "Subject: =?utf-8?q?Hello=0D=0AFrom=3A_victim=40example=2Ecom?="),
    "mime-bare-cr-in-subject": _mime({200, 400}, "Subject: Hello\rFrom: victim@example.com"),
    "mime-bare-lf-in-from": _mime({200, 400}, "From: Eve <eve@example.com>\nFrom: victim@example.com"),
    "mime-date-year-0001": _mime({200}, "Date: Mon, 01 Jan 0001 00:00:00 +0500"),
    "mime-date-year-9999": _mime({200}, "Date: Fri, 31 Dec 9999 23:59:59 -0500"),
    "mime-date-epoch-0": _mime({200}, "Date: Thu, 01 Jan 1970 00:00:00 +0000"),
    "mime-date-garbage": _mime({200}, "Date: 1e20"),
    "mime-from-10kb": _mime({200, 400}, "From: " + "a" * 10_000 + "@example.com"),
    "mime-1000-to-addresses": _mime({200}, "To: " + ", ".join(f"u{i}@example.com" for i in range(1000))),
    "mime-nul-in-subject": _mime({200, 400}, raw=_eml("Subject: a\x00b")),
    "mime-invalid-utf8-header": _mime({200}, raw=_eml("Subject: x").replace(b"Subject: x", b"Subject: \xff\xfe")),
    "mime-message-id-10kb": _mime({200, 400}, "Message-ID: <" + "x" * 10_000 + "@example.com>"),
    "mime-not-a-message": _mime({400}, raw=b"\x00\x01\x02 just bytes"),
    "mime-content-type-json": lambda: (
        "email-mime",
        _eml(""),
        {"Content-Type": "application/json", **basic(MTA)},
        {400},
    ),
    # --- postmark: JSON
    "postmark-truncated-json": _postmark({400}, body=json.dumps(POSTMARK_JSON).encode()[:300]),
    "postmark-nested-arrays-30k": _postmark({400}, body=b"[" * 30_000 + b"]" * 30_000),
    "postmark-unknown-field-nested-30k": _postmark(
        {400, 200}, body=json.dumps(POSTMARK_JSON).encode()[:-2] + b', "Deep": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    ),
    "postmark-content-type-text-plain": _postmark({400}, content_type="text/plain"),
    "postmark-from-10kb": _postmark(
        {400, 200}, FromFull={"Email": "a" * 10_000 + "@example.com", "Name": "A", "MailboxHash": ""}
    ),
    "postmark-crlf-in-subject": _postmark({200}, Subject="Hello\r\nBcc: victim@example.com"),
    "postmark-date-year-0001": _postmark({200}, Date="Mon, 01 Jan 0001 00:00:00 +0500"),
    "postmark-date-year-9999": _postmark({200}, Date="Fri, 31 Dec 9999 23:59:59 -0500"),
    "postmark-number-as-subject": _postmark({400, 200}, Subject=12345),
    "postmark-string-as-headers": _postmark({400}, Headers="From: victim@example.com"),
    "postmark-duplicate-key-from": _postmark(
        {400, 200}, body=json.dumps(POSTMARK_JSON).encode()[:-2] + b', "From": "victim@example.com"}'
    ),
    # --- sendgrid: multipart inbound parse
    "sendgrid-crlf-in-from": _sendgrid({200, 400}, **{"from": b"Eve <eve@example.com>\r\nBcc: victim@example.com"}),
    "sendgrid-crlf-in-subject": _sendgrid({200}, subject=b"Hello\r\nFrom: victim@example.com"),
    "sendgrid-latin1-charset": _sendgrid(
        {200}, text="Olá".encode("latin-1"), charsets=b'{"text":"iso-8859-1","subject":"UTF-8"}'
    ),
    "sendgrid-unknown-charset": _sendgrid({200, 400}, text=b"\xff\xfe", charsets=b'{"text":"x-no-such-charset"}'),
    "sendgrid-charsets-nested-30k": _sendgrid({400}, charsets=b"[" * 30_000 + b"]" * 30_000),
    "sendgrid-envelope-numbers": _sendgrid({400}, envelope=b'{"to": 1, "from": 2}'),
    "sendgrid-no-boundary": _sendgrid({400}, content_type="multipart/form-data"),
    "sendgrid-truncated-multipart": lambda: (
        "sendgrid",
        _multipart(SENDGRID_FIELDS)[:200],
        {"Content-Type": "multipart/form-data; boundary=xYzZY", **basic(SENDGRID)},
        {400, 200},  # the parts that arrived make a (partial) message
    ),
}


@pytest.mark.parametrize("build", list(CASES.values()), ids=list(CASES))
async def test_hostile_webhook_delivery(
    client: AsyncTestClient, db: asyncpg.Connection, build: Callable[[], Delivery]
) -> None:
    await configure_connectors(db)
    connector, body, headers, expect = build()
    response = await client.post(f"/v1/webhooks/{connector}", content=body, headers=headers)
    problem = await assert_handled(response, db, connector, body, expect=expect)
    if problem is not None:
        assert problem["errors"], "the problem names no field"
    # Injected header lines never become identifiers, whatever the connector made of the rest.
    assert not await db.fetchval("select count(*) from identifier where value like '%victim%'")
    if response.status_code == 200 and connector in ("mailgun", "email-mime", "sendgrid"):
        values = [r["value"] for r in await db.fetch("select value from identifier")]
        assert len(values) <= 1, values


async def test_replayed_mailgun_token_is_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure_connectors(db)
    token, stamp = secrets.token_hex(25), str(int(time.time()))
    first = mailgun_body(token=token, timestamp=stamp)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    response = await client.post("/v1/webhooks/mailgun", content=first, headers=headers)
    await assert_handled(response, db, "mailgun", first, expect={200})
    # The very same signed delivery again: the token was used.
    again = await client.post("/v1/webhooks/mailgun", content=first, headers=headers)
    problem = await assert_handled(again, db, "mailgun", first, expect={401})
    assert problem is not None and problem["errors"][0]["field"] == "token"
    # The same signature (timestamp, token) on another body: still the used token.
    other = mailgun_body(token=token, timestamp=stamp, subject="Another body", **{"Message-Id": "<other@example.com>"})
    forged = await client.post("/v1/webhooks/mailgun", content=other, headers=headers)
    problem = await assert_handled(forged, db, "mailgun", other, expect={401})
    assert problem is not None and problem["errors"][0]["field"] == "token"
    assert await db.fetchval("select count(*) from interaction where source = 'mailgun'") == 1


async def test_replayed_twilio_delivery_is_a_duplicate(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    """Twilio has no one-time token: a replayed signed delivery is the same message, stored once."""
    await configure_connectors(db)
    body = TWILIO.encode()
    for _ in range(2):
        response = await client.post("/v1/webhooks/twilio-sms", content=body, headers=twilio_headers(body))
        await assert_handled(response, db, "twilio-sms", body, expect={200})
    assert await db.fetchval("select count(*) from interaction where source = 'twilio-sms'") == 1


async def test_unknown_connector_is_404_problem(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    name = quote("../" + "x" * 5_000, safe="")
    response = await client.post(f"/v1/webhooks/{name}", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
