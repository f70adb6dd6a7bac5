"""What every hostile case must get: a 4xx problem naming what was wrong, or a handled 2xx; never a 5xx; and the raw
body kept (with its status and error) wherever it fits the size limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import httpx

from connectors._twilio import twilio_signature
from tests.raw import open_raw
from tests.webhooks.helpers import configure, public_url

LIMIT = 65_536  # UNIFY_MAX_BODY_BYTES of the test settings

CHAT_SECRET = "whsec_hostile_5b0b1c7e9d"
TWILIO_TOKEN = "9f2c6e1b4a7d8c3e5f0a1b2c3d4e5f60"
INTERCOM_SECRET = "6c1b9e0a-2f4d-4e8b-9a7c-3d5e1f0b2a48"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
MTA = "mta:pipe-8d1f"
POSTMARK = "postmark:inbound-2b9"
SENDGRID = "sendgrid:Parse-7c1e"


async def configure_connectors(db: asyncpg.Connection) -> None:
    await configure(db, "chat", secret=CHAT_SECRET)
    await configure(db, "twilio-sms", secret=TWILIO_TOKEN)
    await configure(db, "intercom", secret=INTERCOM_SECRET)
    await configure(db, "mailgun", secret=MAILGUN_KEY)
    await configure(db, "email-mime", basic_auth=MTA)
    await configure(db, "postmark", basic_auth=POSTMARK)
    await configure(db, "sendgrid", basic_auth=SENDGRID)


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def chat_headers(body: bytes, *, timestamp: str | None = None, content_type: str = "application/json") -> dict:
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    digest = hmac.new(CHAT_SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Unify-Timestamp": stamp, "X-Unify-Signature": f"v1={digest}"}


def intercom_headers(body: bytes) -> dict[str, str]:
    signature = "sha1=" + hmac.new(INTERCOM_SECRET.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature": signature}


def twilio_headers(
    body: bytes, *, url: str | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> dict[str, str]:
    try:
        params = parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        params = []
    return {
        "Content-Type": content_type,
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url or public_url("twilio-sms"), params),
    }


def problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    problem = json.loads(response.content)
    assert problem["status"] == response.status_code
    assert problem["title"] and problem["detail"], problem
    return problem


async def raw_rows(db: asyncpg.Connection, route: str) -> list[asyncpg.Record]:
    return await db.fetch("select * from raw_event where route = $1 order by id", route)


async def assert_handled(
    response: httpx.Response,
    db: asyncpg.Connection,
    route: str,
    body: bytes,
    *,
    expect: set[int] | None = None,
) -> dict[str, Any] | None:
    """No 5xx; a 4xx is a problem document whose raw body is kept with its status and error; a 2xx kept the body too.
    Returns the problem (4xx) or None."""
    assert response.status_code < 500, response.text[:2000]
    if expect is not None:
        assert response.status_code in expect, (response.status_code, response.text[:2000])
    if response.status_code >= 400:
        problem = problem_of(response)
        if response.status_code == 404:  # an unknown route keeps nothing
            return problem
        assert problem.get("raw_event_id"), problem
        raw = await db.fetchrow("select * from raw_event where id = $1", problem["raw_event_id"])
        assert raw is not None, "the rejected body was not kept"
        assert raw["route"] == route
        assert raw["status"] == ("unverified" if response.status_code == 401 else "rejected")
        assert raw["error"]["detail"] == problem["detail"]
        assert open_raw(raw) == body[:LIMIT]
        assert raw["body_size"] >= min(len(body), LIMIT)
        assert raw["truncated"] is (len(body) > LIMIT)
        return problem
    rows = await raw_rows(db, route)
    assert any(open_raw(r) == body and r["status"] == "processed" for r in rows), "the accepted body was not kept"
    return None
