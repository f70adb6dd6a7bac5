"""`GET /v1/audit/consistency` and `unify audit` on hand-built data sets whose every figure is worked out below.

The range is October 2026 (`from=2026-10-01`, `to=2026-10-31`: up to November 1st, exclusive), the repeat window 7
days, so the audit reads interactions from September 24 to November 8.

Customers and contacts (all times UTC):

    Ada  (phone + email)  c1 voice  Sep 29 10:00  billing, before the range
                          c2 email  Oct 2  10:00  billing   wait 3600, answered 11:00, ended 11:05 (handle 300, no talk)
                          c3 chat   Oct 20 10:00  technical wait 30, answered 10:00:30, ended 10:20 (handle 1170)
                          c3b       Oct 20 10:10  the next message of c3's chat (same thread): not a contact
    Bob  (phone)          c4 voice  Oct 5  09:00  billing   wait 60, hold 30, talk 300, 1 transfer → leg 2
                          leg2      Oct 5  09:06:30 continues c4 (previous_contact_id): wait 120, hold 20, talk 200
                          c5 sms    Oct 8  12:00  billing, queue support
                          o1 voice  Oct 9  14:00  outbound callback, ended 14:10
    Cy   (email)          c6 email  Oct 30 12:00  cancel    wait 1800, answered 12:30, ended 12:35
                          c7 chat   Nov 3  09:00  cancel    wait 45, hold 15 (after the range: makes c6 a non-FCR)
    —    (anonymous)      c8 voice  Oct 10 08:00  billing   abandoned after 200 s

Repeats: c2 repeats c1 (3 days, voice → email, the day-before look-back), c5 repeats c4 (voice → sms).
Journeys starting in October: Ada's c3 (chat), Bob's c4…o1 (voice), Cy's c6…c7 (email)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from schemas import ConsistencyReport
from tests.audit.conftest import contact, ident, ingest
from tests.raw import TEST_KEYRING
from unify import cli
from unify.audit import audit_request
from unify.audit.render import channel_rows
from unify.audit.report import mood_median_chi2, two_proportion_z
from unify.errors import BadRequest
from unify.settings import Settings

RANGE = {"from": "2026-10-01", "to": "2026-10-31"}
ADA_PHONE, ADA_MAIL = ident("phone", "+1 415-555-0100", "carrier_attested"), ident("email", "ada@example.com", "signed")
BOB = ident("phone", "+1 212-555-0142", "carrier_attested")
CY = ident("email", "cy@example.org", "signed")


def history() -> list[dict[str, Any]]:
    return [
        contact("c1", "voice", "2026-09-29T10:00:00Z", ADA_PHONE, ADA_MAIL, answered="2026-09-29T10:01:00Z",
                ended="2026-09-29T10:10:00Z", wait=60, talk=480, reason="billing", queue="billing"),
        contact("c2", "email", "2026-10-02T10:00:00Z", ADA_MAIL, answered="2026-10-02T11:00:00Z",
                ended="2026-10-02T11:05:00Z", wait=3600, reason="billing", queue="billing"),
        contact("c3", "chat", "2026-10-20T10:00:00Z", ident("email", "ada@example.com", "authenticated"),
                ident("chat", "web:ada-1", "authenticated"), answered="2026-10-20T10:00:30Z",
                ended="2026-10-20T10:20:00Z", wait=30, reason="technical", queue="support", thread="chat-9"),
        # The next message of the same chat 10 minutes later: the conversation continues, not a new contact.
        contact("c3b", "chat", "2026-10-20T10:10:00Z", ident("chat", "web:ada-1", "authenticated"),
                reason="technical", queue="support", thread="chat-9"),
        contact("ac-1", "voice", "2026-10-05T09:00:00Z", BOB, answered="2026-10-05T09:01:00Z",
                ended="2026-10-05T09:06:30Z", wait=60, hold=30, talk=300, transfers=1, reason="billing",
                queue="billing"),
        contact("ac-2", "voice", "2026-10-05T09:06:30Z", BOB, answered="2026-10-05T09:08:30Z",
                ended="2026-10-05T09:12:10Z", wait=120, hold=20, talk=200, reason="billing", queue="retention",
                previous_contact_id="ac-1"),
        contact("c5", "sms", "2026-10-08T12:00:00Z", BOB, status="received", reason="billing", queue="support"),
        contact("o1", "voice", "2026-10-09T14:00:00Z", BOB, direction="outbound", answered="2026-10-09T14:00:10Z",
                ended="2026-10-09T14:10:00Z", talk=590, reason="billing"),
        contact("c6", "email", "2026-10-30T12:00:00Z", CY, answered="2026-10-30T12:30:00Z",
                ended="2026-10-30T12:35:00Z", wait=1800, reason="cancel", queue="retention"),
        contact("c7", "chat", "2026-11-03T09:00:00Z", ident("email", "cy@example.org", "authenticated"),
                answered="2026-11-03T09:00:45Z", ended="2026-11-03T09:10:00Z", wait=45, hold=15, reason="cancel"),
        contact("c8", "voice", "2026-10-10T08:00:00Z", ident("phone", "anonymous"), status="abandoned",
                ended="2026-10-10T08:03:20Z", wait=200, reason="billing", queue="billing"),
    ]  # fmt: skip


async def customer_of(db: asyncpg.Connection, external_id: str) -> Any:
    return await db.fetchval(
        "select o.customer_id from interaction i join interaction_owner o on o.interaction_id = i.id "
        "where i.external_id = $1",
        external_id,
    )


@pytest.fixture
async def loaded(settings: Settings, db: asyncpg.Connection) -> dict[str, Any]:
    await ingest(settings, history())
    ada, bob, cy = [await customer_of(db, x) for x in ("c1", "ac-1", "c6")]
    assert len({ada, bob, cy}) == 3 and None not in (ada, bob, cy)
    assert await customer_of(db, "c3") == ada and await customer_of(db, "c7") == cy
    # Promises to Ada: two made on email (kept, broken), two on the phone (overdue, open), one made in September.
    promises = [
        ("2026-10-03T09:00:00Z", "2026-10-05T09:00:00Z", "email", "kept"),
        ("2026-10-04T09:00:00Z", "2026-10-06T09:00:00Z", "email", "broken"),
        ("2026-10-06T09:00:00Z", "2026-10-10T09:00:00Z", "voice", "open"),
        ("2026-10-07T09:00:00Z", "2099-12-31T09:00:00Z", "voice", "open"),
        ("2026-09-01T09:00:00Z", "2026-09-02T09:00:00Z", "voice", "kept"),
    ]
    for created, due, channel, status in promises:
        await db.execute(
            "insert into promise (customer_id, text, due_at, channel, status, created_at) "
            "values ($1, 'call back', $2::text::timestamptz, $3, $4, $5::text::timestamptz)",
            ada,
            due,
            channel,
            status,
            created,
        )
    # Identity health: one pending suggestion, one vetoed by a limit, one rejected; one shared identifier.
    low, high = sorted([ada, bob])
    await db.execute(
        "insert into merge_suggestion (customer_a, customer_b, kind, status) values "
        "($1, $2, 'evidence', 'pending'), ($1, $2, 'fuzzy', 'conflict'), ($3, $4, 'evidence', 'rejected')",
        low,
        high,
        *sorted([ada, cy]),
    )
    await db.execute(
        "insert into identifier (kind, value, first_seen, last_seen, shared) "
        "values ('phone', '+18005550100', now(), now(), true)"
    )
    return {"ada": ada, "bob": bob, "cy": cy}


async def report_of(client: AsyncTestClient, auditor: dict[str, str], **params: str) -> dict[str, Any]:
    response = await client.get("/v1/audit/consistency", params={**RANGE, **params}, headers=auditor)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    msgspec.json.decode(response.content, type=ConsistencyReport)  # the body matches the schema
    return response.json()


def by_channel(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["channel"]: c for c in report["channels"]}


def q(n: int, median: float | None = None, p90: float | None = None) -> dict[str, Any]:
    return {"n": n, "median": median, "p90": p90}


async def test_every_figure_by_hand(client: AsyncTestClient, auditor: dict[str, str], loaded: dict[str, Any]) -> None:
    report = await report_of(client, auditor)
    assert report["from"] == "2026-10-01T00:00:00Z" and report["to"] == "2026-11-01T00:00:00Z"
    overall, channels = report["overall"], by_channel(report)
    assert list(channels) == ["voice", "sms", "email", "chat"]

    # Contacts: c2 c3 c4 c5 c6 c8 (leg 2 continues c4, c3b continues c3's chat, o1 is outbound, c1 and c7 are
    # outside the range).
    assert overall["contacts"] == 6 and overall["customers"] == 3
    assert overall["unidentified"] == 1 and overall["unidentified_share"] == pytest.approx(1 / 6)
    assert overall["identified_contacts"] == 5 and overall["legs"] == 8
    assert (channels["chat"]["contacts"], channels["chat"]["legs"]) == (1, 2)
    voice, email, chat, sms = channels["voice"], channels["email"], channels["chat"], channels["sms"]
    assert (voice["contacts"], email["contacts"], chat["contacts"], sms["contacts"]) == (2, 2, 1, 1)
    assert voice["customers"] == 1 and voice["unidentified_share"] == 0.5 and email["customers"] == 2

    # Per leg, as the agents' records show it: voice legs c4 (60+30), leg 2 (120+20), c8 (200).
    assert voice["per_leg"] == {
        "queue_wait": q(3, 120, 200),
        "hold": q(2, 20, 30),
        "customer_wait": q(3, 140, 200),
    }
    # As Bob lived it: his journey (c4, leg 2, c5, o1) waited 60 + 120 in queue and 30 + 20 on hold.
    assert voice["journeys"] == 1
    assert voice["per_journey"] == {"queue_wait": q(1, 180, 180), "hold": q(1, 50, 50), "customer_wait": q(1, 230, 230)}
    # Cy's journey: c6 (1800) and, after the range but in the journey, c7 (45 + 15).
    assert email["per_journey"]["customer_wait"] == q(1, 1860, 1860)
    assert email["per_leg"]["customer_wait"] == q(2, 1800, 3600) and email["per_leg"]["hold"] == q(0)
    assert chat["per_journey"]["customer_wait"] == q(1, 30, 30) and sms["journeys"] == 0
    # Ada's chat recorded no hold: her journey's hold is not known (left out), not 0 s.
    assert chat["per_journey"]["hold"] == q(0)
    assert overall["per_leg"]["queue_wait"] == q(6, 120, 3600)  # 30 60 120 200 1800 3600
    # First answers of the contacts (leg 2 is no contact; c5's text records no wait and was never answered).
    assert (voice["first_answer"], email["first_answer"]) == (q(2, 60, 200), q(2, 1800, 3600))
    assert (chat["first_answer"], sms["first_answer"]) == (q(1, 30, 30), q(0))
    assert overall["first_answer"] == q(5, 200, 3600)  # 30 60 200 1800 3600
    assert overall["per_journey"] == {
        "queue_wait": q(3, 180, 1845),
        "hold": q(2, 15, 50),  # Cy 15, Bob 50
        "customer_wait": q(3, 230, 1860),
    }

    # Handle: talk + hold (330, 220); c2 and c6 have no talk time: answered → ended (300 each); c3 1170.
    assert voice["handle"] == q(2, 220, 330) and email["handle"] == q(2, 300, 300)
    assert overall["handle"] == q(5, 300, 1170)

    # Transfers (c4) and abandonment (c8).
    assert (voice["transferred"], voice["transfer_rate"]) == (1, 0.5)
    assert (voice["abandoned"], voice["abandonment_rate"]) == (1, 0.5)
    assert overall["transfer_rate"] == pytest.approx(1 / 6) and overall["abandonment_rate"] == pytest.approx(1 / 6)

    # Repeats: c2 (of c1, the day before the range and more) and c5, of 5 identified contacts.
    assert (overall["repeats"], overall["repeat_rate"]) == (2, 0.4)
    assert (email["repeat_rate"], sms["repeat_rate"], voice["repeat_rate"], chat["repeat_rate"]) == (0.5, 1, 0, 0)
    # FCR: c2, c3, c5 resolved; c4 (repeated by c5) and c6 (repeated by c7 after `to`) not.
    assert (overall["fcr_settled"], overall["fcr_resolved"], overall["first_contact_resolution"]) == (5, 3, 0.6)
    assert email["first_contact_resolution"] == 0.5 and voice["first_contact_resolution"] == 0
    assert report["switches"] == [
        {"from_channel": "voice", "to_channel": "email", "repeats": 1},
        {"from_channel": "voice", "to_channel": "sms", "repeats": 1},
    ]

    # Promises made in October: email kept + broken, voice overdue + open; September's is left out.
    promises = {(p["overall"], p["channel"]): p for p in report["promises"]}
    assert promises[(True, None)] == {
        "overall": True, "channel": None, "made": 4, "kept": 1, "broken": 1, "overdue": 1, "open": 1,
        "kept_rate": pytest.approx(1 / 3),
    }  # fmt: skip
    assert promises[(False, "email")]["kept_rate"] == 0.5 and promises[(False, "voice")]["kept_rate"] == 0

    # Reasons × channels: journeys by their first contact; Bob's resolved 4 d 5 h 10 min after c4 (o1's end).
    reasons = {(r["reason"], r["channel"]): r for r in report["reasons"]}
    assert set(reasons) == {
        ("billing", "email"),
        ("billing", "sms"),
        ("billing", "voice"),
        ("cancel", "email"),
        ("technical", "chat"),
    }
    assert reasons[("billing", "voice")] == {
        "reason": "billing", "channel": "voice", "contacts": 2, "journeys": 1, "resolved": 1,
        "resolution_rate": 1.0, "median_resolution_seconds": 4 * 86400 + 5 * 3600 + 600,
    }  # fmt: skip
    assert reasons[("technical", "chat")]["median_resolution_seconds"] == 1200
    assert reasons[("cancel", "email")]["resolution_rate"] == 0  # c7's window is still open on Nov 8
    assert reasons[("billing", "email")]["journeys"] == 0 and reasons[("billing", "email")]["resolution_rate"] is None

    # Wait distributions: voice first answers 60 (c4) and 200 (c8); Bob's journey 230; email 3600 and 1800.
    buckets = {
        (b["metric"], b["channel"], b["from_seconds"], b["to_seconds"]): b["count"] for b in report["wait_histogram"]
    }
    assert {k: v for k, v in buckets.items() if k[1] in ("voice", "email")} == {
        ("first_answer_wait", "voice", 60, 120): 1,
        ("first_answer_wait", "voice", 120, 300): 1,
        ("first_answer_wait", "email", 1800, 3600): 1,
        ("first_answer_wait", "email", 3600, None): 1,
        ("journey_wait", "voice", 120, 300): 1,
        ("journey_wait", "email", 1800, 3600): 1,
    }
    assert buckets[("first_answer_wait", "chat", 30, 60)] == 1  # c3: 30 s is the first second of its bucket

    assert report["identity"] == {"pending_suggestions": 1, "conflicts": 1, "shared_identifiers": 1}
    assert report["deviations"] == []  # too few contacts anywhere (minimum 5)


async def test_filters(client: AsyncTestClient, auditor: dict[str, str], loaded: dict[str, Any]) -> None:
    email = await report_of(client, auditor, channel="email")
    assert email["channel"] == "email" and email["overall"]["contacts"] == 2
    assert [c["channel"] for c in email["channels"]] == ["email"]
    assert [(p["overall"], p["channel"], p["made"]) for p in email["promises"]] == [
        (False, "email", 2),
        (True, None, 2),
    ]

    billing = await report_of(client, auditor, reason="billing")  # c2 c4 c5 c8
    assert billing["overall"]["contacts"] == 4 and billing["overall"]["repeat_rate"] == pytest.approx(2 / 3)
    assert {(r["reason"]) for r in billing["reasons"]} == {"billing"}

    queue = await report_of(client, auditor, queue="billing")  # c2 c4 c8 (leg 2 is in retention, c5 in support)
    assert queue["overall"]["contacts"] == 3 and queue["overall"]["legs"] == 3
    assert by_channel(queue)["voice"]["per_leg"]["queue_wait"] == q(2, 60, 200)


async def test_csv_agrees_with_json(client: AsyncTestClient, auditor: dict[str, str], loaded: dict[str, Any]) -> None:
    as_json = msgspec.json.decode(
        (await client.get("/v1/audit/consistency", params=RANGE, headers=auditor)).content, type=ConsistencyReport
    )
    response = await client.get("/v1/audit/consistency", params={**RANGE, "format": "csv"}, headers=auditor)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    from_csv = {(r["channel"], r["metric"]): r["value"] for r in rows if r["section"] == "channel"}
    expected = {
        (f.channel or "all", metric): "" if value is None else str(value)
        for f in (as_json.overall, *as_json.channels)
        for metric, value in channel_rows(f)
    }
    assert from_csv == expected and ("email", "per_journey.customer_wait.median") in from_csv
    switches = {(r["channel"], r["other"]): int(r["value"]) for r in rows if r["section"] == "switch"}
    assert switches == {(s.from_channel, s.to_channel): s.repeats for s in as_json.switches}

    def text(value: Any) -> str:
        return "" if value is None else str(value)

    def section(name: str) -> dict[tuple[str, str, str, str], str]:
        return {(r["channel"], r["reason"], r["other"], r["metric"]): r["value"] for r in rows if r["section"] == name}

    assert as_json.promises and section("promise") == {
        ("all" if p.overall else (p.channel or "none"), "", "", m): text(getattr(p, m))
        for p in as_json.promises
        for m in ("made", "kept", "broken", "overdue", "open", "kept_rate")
    }
    assert as_json.reasons and section("reason") == {
        (r.channel, r.reason, "", m): text(getattr(r, m))
        for r in as_json.reasons
        for m in ("contacts", "journeys", "resolved", "resolution_rate", "median_resolution_seconds")
    }
    assert as_json.wait_histogram and section("histogram") == {
        (b.channel, "", f"{b.from_seconds:g}-{'' if b.to_seconds is None else f'{b.to_seconds:g}'}", b.metric): str(
            b.count
        )
        for b in as_json.wait_histogram
    }
    identity = section("identity")
    assert identity == {
        ("", "", "", name): str(value) for name, value in msgspec.to_builtins(as_json.identity).items()
    }, identity
    by_accept = await client.get(
        "/v1/audit/consistency", params=RANGE, headers={**auditor, "Accept": "text/csv"}
    )  # Accept works too
    assert by_accept.headers["content-type"].startswith("text/csv")


class _Resources(HTMLParser):
    """Every element or attribute of a page that would make a browser fetch something."""

    FETCHING_TAGS = frozenset({"script", "link", "iframe", "object", "embed", "img", "image", "use", "audio", "video"})
    FETCHING_ATTRIBUTES = frozenset({"src", "href", "xlink:href", "srcset", "action", "data", "poster", "background"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.FETCHING_TAGS:
            self.found.append(f"<{tag}>")
        self.found += [f"{tag} {name}={value}" for name, value in attrs if name in self.FETCHING_ATTRIBUTES]


def assert_offline_html(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    resources = _Resources()
    resources.feed(text)
    resources.close()
    assert resources.found == [], resources.found  # nothing to fetch: it renders with no network
    assert not re.search(r"https?://|@import|url\(", text, re.IGNORECASE)  # nor from a style sheet
    charts = re.findall(r"<svg\b.*?</svg>", text, re.DOTALL)
    assert len(charts) >= 5  # bars ×3, histograms ×2, switch matrix
    for chart in charts:
        ElementTree.fromstring(chart)  # well-formed: a browser draws it as written
    for heading in ("Channel switches", "Wait distributions", "queue wait per journey", "hold per journey"):
        assert heading in text


async def test_html_is_self_contained(client: AsyncTestClient, auditor: dict[str, str], loaded: dict[str, Any]) -> None:
    response = await client.get("/v1/audit/consistency", params={**RANGE, "format": "html"}, headers=auditor)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert_offline_html(response.text)


async def test_errors(client: AsyncTestClient, auth: dict[str, str], auditor: dict[str, str]) -> None:
    response = await client.get("/v1/audit/consistency", params=RANGE, headers=auth)  # ingest + context:read only
    assert response.status_code == 403
    for params, field in [
        ({"from": "2026-13-01"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-10-31", "to": "2026-10-01"}, "from"),
        ({"from": "2026-10-01T00:00:00"}, "from"),  # no offset
        ({"channel": "fax"}, "channel"),
        ({"format": "pdf"}, "format"),
        # past the calendar's end once widened by the repeat window, or before it
        ({"to": "9999-12-31"}, "to"),
        ({"from": "0001-01-01", "to": "0001-01-05"}, "to"),
        ({"from": "1899-12-31", "to": "1900-01-05"}, "from"),
        ({"reason": "bill\x00ing"}, "reason"),
        ({"queue": "q\x00"}, "queue"),
        ({"queue": "x" * 513}, "queue"),
    ]:
        response = await client.get("/v1/audit/consistency", params=params, headers=auditor)
        assert response.status_code == 400, (params, response.text)
        problem = response.json()
        assert problem["errors"][0]["field"] == field and field in problem["detail"], problem
    default = await client.get("/v1/audit/consistency", headers=auditor)
    assert default.status_code == 200
    body = default.json()
    assert body["overall"]["contacts"] == 0  # last 30 days: nothing there
    assert msgspec.json.decode(f'"{body["to"]}"'.encode(), type=Any) > msgspec.json.decode(
        f'"{body["from"]}"'.encode(), type=Any
    )


def test_request_defaults() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    asked = audit_request(now=now)
    assert (asked.start, asked.end) == (now - timedelta(days=30), now)
    asked = audit_request("2026-10-01T08:00:00+02:00", "2026-10-02", now=now)
    assert asked.start == datetime(2026, 10, 1, 6, tzinfo=UTC) and asked.end == datetime(2026, 10, 3, tzinfo=UTC)
    with pytest.raises(BadRequest, match="at most"):
        audit_request("2024-01-01", "2026-01-01", now=now)
    asked = audit_request(reason="  billing ", queue=" ", now=now)
    assert (asked.reason, asked.queue) == ("billing", None)
    with pytest.raises(BadRequest, match="out of range"):
        audit_request(None, "9000-01-02", now=now)


def billing_calls(answered: str = "11:01:00") -> list[dict[str, Any]]:
    """Ten calls about billing, October 2–11 at 11:00, each a minute in queue and answered at `answered`; a caller
    each."""
    return [
        contact(f"call-{i}", "voice", f"2026-10-{i + 2:02d}T11:00:00Z", ident("phone", f"+1 415-555-02{i:02d}"),
                answered=f"2026-10-{i + 2:02d}T{answered}Z", ended=f"2026-10-{i + 2:02d}T11:05:00Z", wait=60,
                talk=240, reason="billing")
        for i in range(10)
    ]  # fmt: skip


def deviation_history() -> list[dict[str, Any]]:
    """Billing: six email contacts abandoned after 10 minutes in queue, ten phone calls answered after a minute.
    Cancel: two texts that failed, two calls that did not (too few to judge). Every contact a customer of its own."""
    events = []
    for i in range(6):
        events.append(
            contact(f"mail-{i}", "email", f"2026-10-{i + 2:02d}T10:00:00Z", ident("email", f"e{i}@example.com"),
                    status="abandoned", wait=600, reason="billing")
        )  # fmt: skip
    events += billing_calls()
    for i in range(2):
        events.append(
            contact(f"sms-{i}", "sms", f"2026-10-{i + 20:02d}T10:00:00Z", ident("phone", f"+1 415-555-03{i:02d}"),
                    status="undelivered", reason="cancel")
        )  # fmt: skip
        events.append(
            contact(f"cancel-{i}", "voice", f"2026-10-{i + 20:02d}T12:00:00Z", ident("phone", f"+1 415-555-04{i:02d}"),
                    answered=f"2026-10-{i + 20:02d}T12:01:00Z", ended=f"2026-10-{i + 20:02d}T12:05:00Z", wait=60,
                    talk=240, reason="cancel")
        )  # fmt: skip
    return events


def test_statistics_by_hand() -> None:
    z, p = two_proportion_z(6, 6, 0, 10) or (0, 1)
    assert z == pytest.approx(4.0) and p == pytest.approx(6.334e-5, rel=1e-3)  # pooled 6/16, se 0.25
    chi2, p = mood_median_chi2(6, 6, 0, 10) or (0, 1)
    assert chi2 == pytest.approx(16.0) and p == pytest.approx(6.334e-5, rel=1e-3)
    assert two_proportion_z(0, 5, 0, 5) is None and mood_median_chi2(0, 6, 0, 10) is None


async def test_deviations(
    settings: Settings, client: AsyncTestClient, auditor: dict[str, str], db: asyncpg.Connection
) -> None:
    await ingest(settings, deviation_history())
    report = await report_of(client, auditor)
    flagged = {(d["metric"], d["reason"], d["channel"]): d for d in report["deviations"]}
    wait = flagged[("first_answer_wait", "billing", "email")]
    assert (wait["value"], wait["others"], wait["n"], wait["others_n"], wait["ratio"]) == (600, 60, 6, 10, 10)
    assert wait["test"] == "Mood median" and wait["statistic"] == pytest.approx(16.0)
    assert wait["text"] == (
        "email customers about billing wait 10.0× longer for a first answer than customers on other channels: "
        "median 10.0 min vs 60 s; n=6 vs 10 (p<0.001)"
    )
    # Every reason: the six emails against the twelve calls (the texts record no wait). The pooled median is 60 s;
    # all six emails are above it, none of the calls (a value equal to the median counts as at or below it).
    every = flagged[("first_answer_wait", None, "email")]
    assert (every["value"], every["others"], every["n"], every["others_n"]) == (600, 60, 6, 12)
    assert every["statistic"] == pytest.approx(18.0)
    abandoned = flagged[("abandonment_rate", "billing", "email")]
    assert (abandoned["value"], abandoned["others"], abandoned["difference"]) == (1, 0, 1)
    assert abandoned["statistic"] == pytest.approx(4.0) and abandoned["test"] == "two-proportion z"
    # Every contact: email 6/6 vs 2/14 abandoned (the two texts), z = 0.857 / sqrt(0.4 · 0.6 · (1/6 + 1/14)).
    overall = flagged[("abandonment_rate", None, "email")]
    assert (overall["n"], overall["others_n"]) == (6, 14)
    assert overall["statistic"] == pytest.approx((1 - 2 / 14) / (0.24 * (1 / 6 + 1 / 14)) ** 0.5)
    assert not [d for d in report["deviations"] if d["channel"] == "sms"]
    # The texts recorded no wait: their journeys' waits are not known, so they are not compared (not taken as 0 s).
    judged = report["deviations"] + report["too_few"]
    assert not [d for d in judged if d["metric"] == "journey_wait" and d["channel"] == "sms"]
    # The texts about cancelling all failed, but two are too few to judge (minimum 5).
    too_few = {(d["metric"], d["reason"], d["channel"]): d for d in report["too_few"]}
    cancel = too_few[("abandonment_rate", "cancel", "sms")]
    assert (cancel["n"], cancel["others_n"], cancel["value"], cancel["others"]) == (2, 2, 1, 0)
    assert not [d for d in report["deviations"] if d["metric"] == "promise_kept_rate"]
    # The CSV form lists the same deviations, figure by figure.
    response = await client.get("/v1/audit/consistency", params={**RANGE, "format": "csv"}, headers=auditor)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    for name in ("deviations", "too_few"):
        from_csv = {
            (r["metric"], r["reason"], r["channel"]): r["value"]
            for r in rows
            if r["section"] == name.removesuffix("s") and r["metric"].endswith(".n")
        }
        assert from_csv == {(f"{d['metric']}.n", d["reason"] or "", d["channel"]): str(d["n"]) for d in report[name]}, (
            name
        )

    # Promises made in the range: each emailing customer was promised a refund by email, and each was broken; each
    # caller a call back, kept. Kept rate 0 of 6 vs 10 of 10: z = -1 / sqrt(0.375 · 0.625 · (1/6 + 1/10)).
    for r in await db.fetch("select external_id, interaction_customer(id) as c, id from interaction"):
        if r["external_id"].startswith(("mail-", "call-")):
            email = r["external_id"].startswith("mail-")
            await db.execute(
                "insert into promise (customer_id, text, due_at, channel, status, interaction_id, created_at) "
                "values ($1, 'refund', '2026-10-20T00:00:00Z', $2, $3, $4, '2026-10-10T00:00:00Z')",
                r["c"], "email" if email else "voice", "broken" if email else "kept", r["id"],
            )  # fmt: skip
    report = await report_of(client, auditor)
    flagged = {(d["metric"], d["reason"], d["channel"]): d for d in report["deviations"]}
    kept = flagged[("promise_kept_rate", None, "email")]
    assert (kept["value"], kept["others"], kept["n"], kept["others_n"]) == (0, 1, 6, 10)
    assert kept["statistic"] == pytest.approx(-1 / (0.375 * 0.625 * (1 / 6 + 1 / 10)) ** 0.5)
    assert kept["text"].startswith("email customers see the promises made to them kept less often: 0% vs 100%")


async def test_first_answer_without_a_queue_wait(
    settings: Settings, client: AsyncTestClient, auditor: dict[str, str]
) -> None:
    """Email and chat platforms send no queue wait: a contact's first answer is then the time until it was answered,
    or until the first reply in its thread from a person. Six emails about billing, each answered two hours later by
    an agent's email in the same thread (before that: the customer's follow-up, an automatic reply, a reply that
    failed; none a person's reply); an email nobody answered (not known: left out); a chat answered after 30 s (an
    agent's message ten minutes later comes after that); a chat whose bot greets at once and whose agent writes after
    15 minutes; ten calls a minute in queue, answered after 90 s (the queue wait is what counts)."""
    events = []
    for i in range(6):
        day = f"2026-10-{i + 2:02d}"
        customer = ident("email", f"e{i}@example.com")
        events += [
            contact(f"mail-{i}", "email", f"{day}T10:00:00Z", customer, reason="billing", thread=f"t{i}"),
            contact(f"more-{i}", "email", f"{day}T10:20:00Z", customer, reason="billing", thread=f"t{i}"),
            contact(f"reply-{i}", "email", f"{day}T12:00:00Z", customer, direction="outbound", thread=f"t{i}"),
        ]
    events += [
        contact("auto", "email", "2026-10-02T10:01:00Z", ident("email", "e0@example.com"), direction="outbound",
                thread="t0", auto_submitted=True),
        contact("bounced", "email", "2026-10-03T10:02:00Z", ident("email", "e1@example.com"), direction="outbound",
                thread="t1", status="failed"),
        contact("unanswered", "email", "2026-10-20T10:00:00Z", ident("email", "late@example.com"), reason="billing",
                thread="t-none"),
        contact("chat-1", "chat", "2026-10-21T10:00:00Z", ident("email", "c@example.com"),
                answered="2026-10-21T10:00:30Z", reason="billing", thread="c1"),
        contact("chat-1-agent", "chat", "2026-10-21T10:10:00Z", ident("email", "c@example.com"), direction="outbound",
                thread="c1", author_type="agent"),
        contact("chat-2", "chat", "2026-10-22T10:00:00Z", ident("email", "d@example.com"), reason="billing",
                thread="c2"),
        contact("chat-2-bot", "chat", "2026-10-22T10:00:05Z", ident("email", "d@example.com"), direction="outbound",
                thread="c2", author_type="bot"),
        contact("chat-2-agent", "chat", "2026-10-22T10:15:00Z", ident("email", "d@example.com"), direction="outbound",
                thread="c2", author_type="agent"),
    ]  # fmt: skip
    events += billing_calls(answered="11:01:30")
    await ingest(settings, events)
    report = await report_of(client, auditor)
    flagged = {(d["metric"], d["reason"], d["channel"]): d for d in report["deviations"]}
    # The customer's follow-up 20 minutes later continues the conversation (not a contact of its own).
    assert by_channel(report)["email"]["contacts"] == 7
    email = flagged[("first_answer_wait", "billing", "email")]
    # others: the ten calls (60 s) and the chats (30 s, 900 s)
    assert (email["value"], email["others"], email["n"], email["others_n"]) == (7200, 60, 6, 12)
    buckets = {
        (b["metric"], b["channel"], b["from_seconds"]): b["count"]
        for b in report["wait_histogram"]
        if b["metric"] == "first_answer_wait"
    }
    assert buckets == {
        ("first_answer_wait", "email", 3600): 6,
        ("first_answer_wait", "chat", 30): 1,
        ("first_answer_wait", "chat", 600): 1,
        ("first_answer_wait", "voice", 60): 10,
    }
    # The per-leg queue wait stays what the records show: the emails and the chats recorded none.
    assert by_channel(report)["email"]["per_leg"]["queue_wait"]["n"] == 0
    # Per channel: the six answered emails (the seventh has none yet), the chats, the calls' queue waits.
    channels = by_channel(report)
    assert (channels["email"]["first_answer"], channels["chat"]["first_answer"]) == (q(6, 7200, 7200), q(2, 30, 900))
    assert channels["voice"]["first_answer"] == q(10, 60, 60)


def test_cli_writes_each_format(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(ingest(settings, history()))
    assert settings.database_url
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("UNIFY_RAW_KEYS", TEST_KEYRING.to_setting())
    monkeypatch.setenv("UNIFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UNIFY_LOG_FORMAT", "json")
    monkeypatch.setenv("UNIFY_LOG_LEVEL", "warning")
    for fmt in ("json", "csv", "html"):
        out = tmp_path / f"audit.{fmt}"
        assert cli.main(["audit", "--from", "2026-10-01", "--to", "2026-10-31", "--format", fmt, "-o", str(out)]) == 0
        assert out.stat().st_size > 0
    report = msgspec.json.decode((tmp_path / "audit.json").read_bytes(), type=ConsistencyReport)
    assert report.overall.contacts == 6 and report.overall.repeat_rate == 0.4
    rows = list(csv.DictReader(io.StringIO((tmp_path / "audit.csv").read_text())))
    assert {"section": "channel", "channel": "all", "reason": "", "other": "", "metric": "contacts", "value": "6",
            "note": ""} in rows  # fmt: skip
    assert_offline_html((tmp_path / "audit.html").read_text())
    assert "wrote" in capsys.readouterr().err
    assert cli.main(["audit", "--from", "2026-10-31", "--to", "2026-10-01"]) == 2  # from after to
    assert cli.main(["audit", "--to", "9999-12-31"]) == 2  # out of range: an error, not a traceback
    capsys.readouterr()
    assert cli.main(["audit", "-o", str(tmp_path / "audit.pdf")]) == 2  # a suffix that names no format
    assert "--format" in capsys.readouterr().err and not (tmp_path / "audit.pdf").exists()
    html = tmp_path / "page.htm"
    assert cli.main(["audit", "--from", "2026-10-01", "--to", "2026-10-31", "-o", str(html)]) == 0
    assert_offline_html(html.read_text())
