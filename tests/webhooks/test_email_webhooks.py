"""Email webhooks (raw MIME, Mailgun, Postmark, SendGrid) through the real route into PostgreSQL: normalized rows,
one thread whatever the order, duplicates, bounces and auto-replies that link nobody, bad credentials (401, kept),
malformed bodies (400, kept), and Mailgun's stale timestamps and replayed tokens."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from litestar.testing import AsyncTestClient

from connectors.email.mailgun import mailgun_signature
from connectors.email.mime import body_signature
from tests.webhooks.helpers import configure, interactions, post_webhook, raw_events

FIXTURES = Path(__file__).parent.parent / "fixtures"
OK = {"status": "ok"}


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def event_of(row: dict[str, Any]) -> dict[str, Any]:
    event = row["event"]
    return json.loads(event) if isinstance(event, str) else event


async def identifiers(db: asyncpg.Connection) -> list[tuple[str, str, str, bool]]:
    rows = await db.fetch("select kind, value, verification, customer_id from identifier order by kind, value")
    return [(r["kind"], r["value"], r["verification"], r["customer_id"] is not None) for r in rows]


async def count(db: asyncpg.Connection, source: str) -> int:
    return await db.fetchval("select count(*) from interaction where source = $1", source)


# --- email-mime ---------------------------------------------------------------------------------------------------

MTA = "mta:pipe-8d1f"


def eml(name: str) -> bytes:
    return (FIXTURES / "email-mime" / name).read_bytes()


async def post_eml(client: AsyncTestClient, body: bytes, credentials: str = MTA) -> Any:
    return await post_webhook(client, "email-mime", body, {"Content-Type": "message/rfc822", **basic(credentials)})


async def test_raw_mime_thread_delivered_out_of_order(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "email-mime", basic_auth=MTA, trusted_authserv_id="mx.acme.test")
    for name in ("thread-3-reply.eml", "thread-1-question.eml", "thread-2-followup.eml"):
        response = await post_eml(client, eml(name))
        assert (response.status_code, response.json()) == (200, OK), response.text
    rows = await interactions(db, "email-mime")
    assert [(r["external_id"], r["thread_key"], r["channel"], r["direction"], r["status"]) for r in rows] == [
        (external_id, "CAJt9xK3q1d=Ff0oW8mQ+question@mail.example.net", "email", "inbound", "received")
        for external_id in (
            "CAJt9xK3q1d=Ff0oW8mQ+question@mail.example.net",
            "CAJt9xK3q1d=Ff0oW8mQ+photos@mail.example.net",
            "CAJt9xK3q1d=Ff0oW8mQ+thanks@mail.example.net",
        )
    ]
    assert [r["subject"] for r in rows] == ["Order #10422 arrived damaged"] + ["Re: Order #10422 arrived damaged"] * 2
    assert all(r["identified"] for r in rows)
    # The first message carried a DKIM/SPF pass from the trusted MTA: the address is known as signed.
    assert await identifiers(db) == [("email", "maria.gonzalez@example.net", "signed", True)]
    customers = await db.fetchval(
        "select count(distinct customer_id) from interaction_identifier ii join identifier i on i.id = ii.identifier_id"
    )
    assert customers == 1
    assert event_of(rows[2])["snippet"] == "Perfect, thank you! I will keep the broken one until the courier comes."

    again = await post_eml(client, eml("thread-1-question.eml"))
    assert again.status_code == 200
    assert await count(db, "email-mime") == 3
    assert [r["status"] for r in await raw_events(db, "email-mime")] == ["processed"] * 4


async def test_raw_mime_charsets_and_broken_messages(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "email-mime", basic_auth=MTA)
    names = ["encoded-words-latin1.eml", "shift-jis.eml", "wrong-charset.eml", "boundary-reuse.eml", "invalid-date.eml"]
    for name in names:
        assert (await post_eml(client, eml(name))).status_code == 200
    subjects = {r["external_id"]: (r["subject"], event_of(r)["text"]) for r in await interactions(db, "email-mime")}
    assert subjects["5f2c1a9e.1c69fb81.8a3e.4b2d@mail.example.de"][0] == "Réclamation : café défectueux"
    assert subjects["20240606101500.A1B2C3@mail.example.co.jp"] == ("配送について", "注文番号10423の配送はいつですか？")
    assert subjects["wrong-charset.8842@legacy.example.org"][1] == "The crème brûlée set is missing — please check."
    assert subjects["boundary-reuse.1717777777@mailer.example.org"][1] == "Please find my warranty card attached."
    row = await db.fetchrow(
        "select occurred_at, received_at from interaction where external_id = 'invalid-date.9001@example.org'"
    )
    assert abs((row["received_at"] - row["occurred_at"]).total_seconds()) < 60  # no Date: the receive time


async def test_bounce_and_auto_reply_link_nobody(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "email-mime", basic_auth=MTA)
    for name in ("bounce.eml", "auto-reply.eml"):
        assert (await post_eml(client, eml(name))).status_code == 200
    rows = {r["external_id"]: r for r in await interactions(db, "email-mime")}
    bounce = rows["20240609100003.4Vt9Q21kP3z9sT0@mx.acme.test"]
    assert (bounce["status"], bounce["identified"], event_of(bounce)["details"]["bounce"]) == ("bounced", False, True)
    auto = rows["ooo.20240610.77@mail.example.com"]
    assert (auto["status"], auto["identified"], event_of(auto)["details"]["auto_submitted"]) == (
        "received",
        False,
        True,
    )
    assert await identifiers(db) == []


async def test_raw_mime_wrong_credentials_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "email-mime", basic_auth=MTA)
    response = await post_eml(client, eml("thread-1-question.eml"), credentials="mta:guess")
    assert response.status_code == 401
    assert response.json()["errors"][0]["field"] == "authorization"
    [raw] = await raw_events(db, "email-mime")
    assert (raw["status"], bytes(raw["body"])) == ("unverified", eml("thread-1-question.eml"))
    assert await count(db, "email-mime") == 0


async def test_raw_mime_signature_header(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "email-mime", secret="s3cret-for-hmac")
    body = eml("auto-reply.eml")
    headers = {"Content-Type": "message/rfc822", "X-Unify-Signature": body_signature("s3cret-for-hmac", body)}
    assert (await post_webhook(client, "email-mime", body, headers)).status_code == 200
    forged = headers | {"X-Unify-Signature": body_signature("guess", body)}
    response = await post_webhook(client, "email-mime", body, forged)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (401, "x-unify-signature")
    assert [r["status"] for r in await raw_events(db, "email-mime")] == ["processed", "unverified"]


async def test_raw_mime_malformed_400_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "email-mime", basic_auth=MTA)
    response = await post_eml(client, b'{"subject": "not an email"}')
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "$"
    [raw] = await raw_events(db, "email-mime")
    assert raw["status"] == "rejected"
    assert await count(db, "email-mime") == 0


# --- Mailgun ------------------------------------------------------------------------------------------------------

MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
FIXTURE_TOKEN = "5egbgr1vjgqxtrnp65xfznchgdccwh5d6i09vijqi3whgowmn6"
FIXTURE_SIGNATURE = "9cfc5c41582e51246e73c88d34db3af0a3a2692a76fbab81492842f000256d33"


def mailgun_form(name: str, *, timestamp: int | None = None, token: str | None = None, **changes: str) -> bytes:
    """A fixture re-signed for now (Mailgun's timestamp must be fresh)."""
    raw = (FIXTURES / "mailgun" / name).read_text()
    fields = dict(parse_qsl(raw, keep_blank_values=True, encoding="latin-1")) | changes  # latin-1 keeps every byte
    stamp, token = str(timestamp if timestamp is not None else int(time.time())), token or secrets.token_hex(25)
    fields |= {"timestamp": stamp, "token": token, "signature": mailgun_signature(MAILGUN_KEY, stamp, token)}
    return urlencode(fields, encoding="latin-1").encode()


def mailgun_multipart(name: str) -> tuple[bytes, str]:
    body = (FIXTURES / "mailgun" / name).read_bytes()
    stamp, token = str(int(time.time())), secrets.token_hex(25)
    body = body.replace(b"1403645220", stamp.encode()).replace(FIXTURE_TOKEN.encode(), token.encode())
    body = body.replace(FIXTURE_SIGNATURE.encode(), mailgun_signature(MAILGUN_KEY, stamp, token).encode())
    return body, (FIXTURES / "mailgun" / "forward-multipart.content-type").read_text().strip()


async def post_mailgun(
    client: AsyncTestClient, body: bytes, content_type: str = "application/x-www-form-urlencoded"
) -> Any:
    return await post_webhook(
        client, "mailgun", body, {"Content-Type": content_type, "User-Agent": "mailgun/treq-16.12.0"}
    )


async def test_mailgun_forward_is_stored_normalized(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "mailgun", secret=MAILGUN_KEY)
    response = await post_mailgun(client, mailgun_form("forward-urlencoded.txt"))
    assert (response.status_code, response.json()) == (200, OK), response.text
    [row] = await interactions(db, "mailgun")
    assert (row["external_id"], row["thread_key"], row["status"], row["subject"]) == (
        "CAGq1mA7Yt9pXh=reply-7781@mail.gmail.com",
        "CAGq1mA5kq0WnqQ+order-7781@mail.gmail.com",
        "received",
        "Re: Delivery window for order 7781",
    )
    event = event_of(row)
    assert event["snippet"] == "Tuesday after 3pm works best, thanks!\n\nJordan"
    assert event["endpoint"] == {"kind": "email", "value": "support@mg.acme.test"}
    assert event["details"]["cc"] == ["sam.lee@example.com"]
    assert await identifiers(db) == [("email", "jordan.lee@example.com", "signed", True)]

    body, content_type = mailgun_multipart("forward-multipart.txt")
    assert (await post_mailgun(client, body, content_type)).status_code == 200
    assert (await post_mailgun(client, mailgun_form("forward-mime.txt"))).status_code == 200
    rows = {r["external_id"]: event_of(r) for r in await interactions(db, "mailgun")}
    assert [a["filename"] for a in rows["CAGq1mA9pZ2=invoice-7781@mail.gmail.com"]["attachments"]] == [
        "invoice-7781.pdf",
        "image001.png",
    ]
    assert rows["53A9F0A2.4030607@example.fr"]["text"].startswith("Bonjour, le colis n'est pas arrivé.")


async def test_mailgun_duplicate_and_replayed_token(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "mailgun", secret=MAILGUN_KEY)
    first = mailgun_form("forward-urlencoded.txt", token="t" * 50)
    assert (await post_mailgun(client, first)).status_code == 200
    # The same message delivered again (another route, another token): nothing new.
    assert (await post_mailgun(client, mailgun_form("forward-urlencoded.txt"))).status_code == 200
    assert await count(db, "mailgun") == 1
    # The very same signed request again: the token was used.
    replay = await post_mailgun(client, first)
    assert replay.status_code == 401
    assert replay.json()["errors"][0]["field"] == "token"
    assert [r["status"] for r in await raw_events(db, "mailgun")] == ["processed", "processed", "unverified"]
    assert await count(db, "mailgun") == 1


async def test_mailgun_stale_timestamp_401(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "mailgun", secret=MAILGUN_KEY)
    stale = mailgun_form("forward-urlencoded.txt", timestamp=int(time.time()) - 3600)
    response = await post_mailgun(client, stale)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (401, "timestamp")
    [raw] = await raw_events(db, "mailgun")
    assert raw["status"] == "unverified"
    assert await count(db, "mailgun") == 0


async def test_mailgun_wrong_signature_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "mailgun", secret="key-someone-else")
    body = mailgun_form("forward-urlencoded.txt")
    response = await post_mailgun(client, body)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (401, "signature")
    [raw] = await raw_events(db, "mailgun")
    assert (raw["status"], bytes(raw["body"])) == ("unverified", body)
    assert await count(db, "mailgun") == 0


async def test_mailgun_malformed_400_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "mailgun", secret=MAILGUN_KEY)
    response = await post_mailgun(client, mailgun_form("forward-urlencoded.txt", **{"message-headers": "{oops"}))
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "message-headers")
    [raw] = await raw_events(db, "mailgun")
    assert raw["status"] == "rejected"
    assert await count(db, "mailgun") == 0


# --- Postmark -----------------------------------------------------------------------------------------------------

POSTMARK = "postmark:Xk82-inbound"


def postmark_json(name: str = "inbound.json") -> bytes:
    return (FIXTURES / "postmark" / name).read_bytes()


async def post_postmark(client: AsyncTestClient, body: bytes, credentials: str = POSTMARK) -> Any:
    return await post_webhook(client, "postmark", body, {"Content-Type": "application/json", **basic(credentials)})


async def test_postmark_inbound_is_stored_normalized(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "postmark", basic_auth=POSTMARK)
    response = await post_postmark(client, postmark_json())
    assert (response.status_code, response.json()) == (200, OK), response.text
    [row] = await interactions(db, "postmark")
    assert (row["external_id"], row["thread_key"], row["subject"], row["identified"]) == (
        "73e6d360-66eb-11e1-8e72-a8206ea7d310",
        "CAFJ8vkW5t=pedido-7790@mail.gmail.com",
        "Re: Pedido 7790 – troca de cor",
        True,
    )
    assert event_of(row)["snippet"] == "Sim, pode trocar para a cor grafite.\n\nObrigada,\nAna"
    assert await identifiers(db) == [("email", "ana.souza@example.com.br", "signed", True)]

    assert (await post_postmark(client, postmark_json())).status_code == 200  # duplicate
    assert await count(db, "postmark") == 1

    assert (await post_postmark(client, postmark_json("inbound-bounce.json"))).status_code == 200
    bounce = await db.fetchrow("select status, identified from interaction where external_id like '0c1c4b2e%'")
    assert (bounce["status"], bounce["identified"]) == ("bounced", False)
    assert len(await identifiers(db)) == 1


async def test_postmark_wrong_credentials_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "postmark", basic_auth=POSTMARK)
    response = await post_postmark(client, postmark_json(), credentials="postmark:guess")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (401, "authorization")
    [raw] = await raw_events(db, "postmark")
    assert raw["status"] == "unverified"
    assert await count(db, "postmark") == 0


async def test_postmark_malformed_400_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "postmark", basic_auth=POSTMARK)
    body = json.dumps(json.loads(postmark_json()) | {"MessageID": None}).encode()
    response = await post_postmark(client, body)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "$.MessageID")
    [raw] = await raw_events(db, "postmark")
    assert raw["status"] == "rejected"


# --- SendGrid -----------------------------------------------------------------------------------------------------

SENDGRID = "sendgrid:Parse-7c1e"
MULTIPART = "multipart/form-data; boundary=xYzZY"


def sendgrid_body(name: str) -> bytes:
    return (FIXTURES / "sendgrid" / name).read_bytes()


async def post_sendgrid(client: AsyncTestClient, body: bytes, credentials: str = SENDGRID) -> Any:
    return await post_webhook(client, "sendgrid", body, {"Content-Type": MULTIPART, **basic(credentials)})


async def test_sendgrid_default_and_raw_modes(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "sendgrid", basic_auth=SENDGRID)
    for name in ("default.txt", "raw.txt", "default.txt"):
        response = await post_sendgrid(client, sendgrid_body(name))
        assert (response.status_code, response.json()) == (200, OK), response.text
    rows = {r["external_id"]: r for r in await interactions(db, "sendgrid")}
    assert len(rows) == 2  # the second default.txt was a duplicate
    default = rows["CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.example.org"]
    assert (default["subject"], default["thread_key"]) == (
        "Re: Rücksendung Bestellung 8120",
        "CAN_P_JMk2=order-8120@mail.example.org",
    )
    assert "Größe: 40×30 cm" in event_of(default)["text"]  # declared iso-8859-1
    assert await identifiers(db) == [
        ("email", "juergen.weiss@example.org", "signed", True),
        ("email", "news@example.org", "unverified", True),
    ]


async def test_sendgrid_wrong_credentials_401_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "sendgrid", basic_auth=SENDGRID)
    response = await post_sendgrid(client, sendgrid_body("default.txt"), credentials="sendgrid:nope")
    assert (response.status_code, response.json()["errors"][0]["field"]) == (401, "authorization")
    [raw] = await raw_events(db, "sendgrid")
    assert raw["status"] == "unverified"
    assert await count(db, "sendgrid") == 0


async def test_sendgrid_malformed_400_and_kept(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await configure(db, "sendgrid", basic_auth=SENDGRID)
    body = sendgrid_body("default.txt").replace(b'{"to": ["support@parse.acme.test"]', b'{"to": support')
    response = await post_sendgrid(client, body)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (400, "envelope")
    [raw] = await raw_events(db, "sendgrid")
    assert (raw["status"], bytes(raw["body"])) == ("rejected", body)
    assert await count(db, "sendgrid") == 0
