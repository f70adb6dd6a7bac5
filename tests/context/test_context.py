"""GET /v1/context and the customer timeline, through the real API against a real PostgreSQL: lookups by every
identifier kind, unknown and shared callers, repeats across channels, effort over transfers, promises, guidance,
masking on unverified evidence, paging and the access log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from schemas import Context, Timeline
from tests.events import native_event
from unify.auth import create_key
from unify.http import create_app
from unify.settings import Settings

NOW = datetime.now(UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).isoformat()


def ident(kind: str, value: str, verification: str = "unverified") -> dict[str, str]:
    return {"kind": kind, "value": value, "verification": verification}


def event(external_id: str, channel: str, *identifiers: dict[str, str], **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "channel": channel,
        "customer": {"identifiers": list(identifiers), "display_name": extra.pop("name", "Ada Lovelace")},
        "details": {"type": channel, **extra.pop("details", {})},
        "queue_wait_seconds": None,
        "hold_seconds": None,
        "talk_seconds": None,
        "answered_at": None,
        "ended_at": None,
    }
    fields.update(extra)
    body = native_event(external_id, **fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
async def admin(db: asyncpg.Connection) -> dict[str, str]:
    key, _ = await create_key(db, "supervisor", ["admin"])
    return {"Authorization": f"Bearer {key}"}


_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


async def post(client: AsyncTestClient, auth: dict[str, str], *events: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.post("/v1/interactions", json=list(events), headers=auth)
    assert response.status_code in (200, 201), response.text
    return response.json()["results"]


async def context(client: AsyncTestClient, auth: dict[str, str], **params: Any) -> Context:
    response = await client.get("/v1/context", params=params, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    # Strict: the document PostgreSQL assembles has exactly the documented shape.
    return msgspec.json.decode(response.content, type=Context, strict=True)


PHONE = ident("phone", "+14155550100", "carrier_attested")


async def test_lookup_by_every_identifier_kind_and_by_formatting_variants_finds_one_customer(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    results = await post(
        client,
        auth,
        event("call-1", "voice", PHONE, ident("account", "AC-77", "authenticated"), occurred_at=ago(days=2)),
        event(
            "mail-1",
            "email",
            ident("email", "Ada <Ada.Lovelace@Example.com>", "signed"),
            ident("account", "AC-77", "authenticated"),
            occurred_at=ago(days=1),
            subject="My bill",
            text="Why is my bill twice as high?",
        ),
        event(
            "chat-1",
            "chat",
            ident("chat", "intercom:u-42", "authenticated"),
            ident("account", "AC-77", "authenticated"),
            occurred_at=ago(hours=1),
        ),
    )
    customer = results[0]["customer_id"]
    assert {r["customer_id"] for r in results} == {customer}
    lookups = [
        {"phone": "+14155550100"},
        {"phone": "(415) 555-0100"},
        {"phone": "415.555.0100"},
        {"phone": "tel:+1-415-555-0100"},
        {"email": "ada.lovelace@example.com"},
        {"email": '"Ada" <ADA.LOVELACE@EXAMPLE.COM>'},
        {"chat": "intercom:u-42"},
        {"account": "AC-77"},
        {"customer_id": customer},
    ]
    for params in lookups:
        found = await context(client, auth, verification="authenticated", **params)
        assert found.match.status == "found", params
        assert found.customer is not None and str(found.customer.id) == customer, params
        assert [e.channel for e in found.timeline] == ["chat", "email", "voice"], params
    by_phone = await context(client, auth, phone="(415) 555-0100", verification="carrier_attested")
    assert by_phone.match.kind == "phone" and by_phone.match.value == "+14155550100"
    assert by_phone.match.identifier_verification == "carrier_attested"
    assert by_phone.match.trusted
    assert {(i.kind, i.value) for i in by_phone.customer.identifiers} == {
        ("phone", "+14155550100"),
        ("email", "ada.lovelace@example.com"),
        ("chat", "intercom:u-42"),
        ("account", "AC-77"),
    }
    email = next(e for e in by_phone.timeline if e.channel == "email")
    assert email.subject == "My bill" and email.snippet == "Why is my bill twice as high?"


async def test_unknown_and_junk_callers_get_an_empty_context_not_a_404(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    for params in ({"phone": "+14155559999"}, {"phone": "anonymous"}, {"email": "nobody@example.org"}):
        unknown = await context(client, auth, **params)
        assert unknown.match.status == "unknown"
        assert unknown.customer is None
        assert unknown.timeline == [] and unknown.promises == [] and unknown.guidance == []
        assert not unknown.repeat.is_repeat and unknown.effort.interactions == 0
    assert (await context(client, auth, phone="anonymous")).match.value is None


async def test_shared_number_is_ambiguous_with_its_candidates(client: AsyncTestClient, auth: dict[str, str]) -> None:
    switchboard = ident("phone", "+12125550000", "carrier_attested")
    people = set()
    for n in range(4):
        results = await post(
            client,
            auth,
            event(f"call-{n}", "voice", switchboard, ident("account", f"ACC-{n}", "authenticated"), name=f"P{n}"),
        )
        people.add(results[0]["customer_id"])
    shared = await context(client, auth, phone="212-555-0000")
    assert shared.match.status == "ambiguous"
    assert shared.customer is None and shared.timeline == []
    assert {str(c.customer_id) for c in shared.match.candidates} == people
    assert {c.display_name for c in shared.match.candidates} == {"P0", "P1", "P2", "P3"}


async def test_a_call_after_an_email_about_the_same_bill_is_a_repeat_and_an_old_one_is_not(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    await post(
        client,
        auth,
        event("mail-old", "email", ident("email", "ada@example.com"), PHONE, occurred_at=ago(days=20), reason="plan"),
        event("mail-bill", "email", ident("email", "ada@example.com"), occurred_at=ago(days=3), reason="billing"),
        event("call-bill", "voice", PHONE, occurred_at=ago(hours=2), reason="billing"),
    )
    found = await context(client, auth, phone="+14155550100")
    repeat = found.repeat
    assert repeat.is_repeat and repeat.window_days == 7
    assert repeat.contacts == 2
    assert sorted(repeat.channels) == ["email", "voice"]
    assert repeat.reasons == ["billing"]
    assert repeat.since is not None and abs(repeat.since - (NOW - timedelta(days=3))) < timedelta(seconds=1)
    flags = {e.external_id if hasattr(e, "external_id") else e.channel: e.repeat for e in found.timeline}
    assert [e.repeat for e in found.timeline] == [True, False, False], flags

    # A customer whose only contact is outside the window is not a repeat.
    await post(client, auth, event("call-lone", "voice", ident("phone", "+14155550111"), occurred_at=ago(days=9)))
    lone = await context(client, auth, phone="+14155550111")
    assert lone.match.status == "found"
    assert not lone.repeat.is_repeat and lone.repeat.contacts == 0 and lone.repeat.channels == []
    assert not lone.effort.ongoing and lone.effort.customer_wait_seconds == 0


async def test_effort_sums_every_leg_of_a_transferred_call_next_to_what_each_agent_saw(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    await post(
        client,
        auth,
        event(
            "leg-1",
            "voice",
            PHONE,
            occurred_at=ago(minutes=40),
            agent="agent.kim",
            queue_wait_seconds=120,
            hold_seconds=30,
            transfer_count=1,
            details={"next_contact_id": "leg-2"},
        ),
        event(
            "leg-2",
            "voice",
            PHONE,
            occurred_at=ago(minutes=30),
            agent="agent.raj",
            queue_wait_seconds=200,
            hold_seconds=60,
            details={"previous_contact_id": "leg-1"},
        ),
        # An internal consult call is no part of the customer's effort.
        event("consult", "voice", PHONE, direction="internal", occurred_at=ago(minutes=29), queue_wait_seconds=999),
    )
    effort = (await context(client, auth, phone="+14155550100")).effort
    assert effort.ongoing
    assert effort.interactions == 2 and effort.contacts == 1
    assert effort.customer_wait_seconds == 410
    assert effort.queue_wait_seconds == 320 and effort.hold_seconds == 90
    assert effort.transfers == 1 and effort.agents == 2
    assert effort.longest_leg_wait_seconds == 260 and effort.average_leg_wait_seconds == 205
    assert effort.perception_gap == pytest.approx(410 / 260)
    # The continuation leg is not a second contact: the customer is not "back".
    assert (await context(client, auth, phone="+14155550100")).repeat.contacts == 1


async def test_effort_counts_call_legs_no_platform_counted_and_averages_the_waits_recorded(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    await post(
        client,
        auth,
        event("call", "voice", PHONE, occurred_at=ago(minutes=40), agent="agent.kim", queue_wait_seconds=300),
        # an inbound continuation leg that names its parent and counts no transfer itself
        event(
            "child", "voice", PHONE, occurred_at=ago(minutes=35), agent="agent.raj", details={"parent_call_id": "call"}
        ),
        # chat messages record no wait: they are no legs of 0 s
        event("chat-1", "chat", PHONE, occurred_at=ago(minutes=20)),
        event("chat-2", "chat", PHONE, occurred_at=ago(minutes=10)),
    )
    effort = (await context(client, auth, phone="+14155550100")).effort
    assert effort.interactions == 4 and effort.transfers == 1
    assert effort.longest_leg_wait_seconds == 300 and effort.average_leg_wait_seconds == 300


async def test_promises_show_overdue_first_and_can_be_kept(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    results = await post(client, auth, event("call-1", "voice", PHONE, occurred_at=ago(days=1)))
    customer = results[0]["customer_id"]
    made = []
    for text, due in (("Send the corrected bill", ago(days=-3)), ("Call back about the refund", ago(hours=5))):
        response = await client.post(
            f"/v1/customers/{customer}/promises",
            json={"text": text, "due_at": due, "channel": "voice", "agent": "agent.kim"},
            headers=admin,
        )
        assert response.status_code == 201, response.text
        made.append(response.json())
    # Recording a promise needs context:write; the read-only desktop key may not.
    denied = await client.post(
        f"/v1/customers/{customer}/promises", json={"text": "x", "due_at": ago(days=-1)}, headers=auth
    )
    assert denied.status_code == 403
    promises = (await context(client, auth, customer_id=customer)).promises
    assert [p.text for p in promises] == ["Call back about the refund", "Send the corrected bill"]
    assert [p.overdue for p in promises] == [True, False]

    kept = await client.patch(
        f"/v1/customers/{customer}/promises/{made[1]['id']}",
        json={"status": "kept", "note": "called 14:10"},
        headers=admin,
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["status"] == "kept" and kept.json()["resolved_by"].startswith("api-key:")
    promises = (await context(client, auth, customer_id=customer)).promises
    assert [(p.status, p.overdue) for p in promises] == [("open", False), ("kept", False)]

    bad = await client.patch(
        f"/v1/customers/{customer}/promises/{made[0]['id']}", json={"status": "forgotten"}, headers=admin
    )
    assert bad.status_code == 400 and "status" in bad.text
    # What PostgreSQL cannot store is a 400 naming the field, not a server error.
    for body, field in [
        ({"text": "x", "due_at": "0001-01-01T00:00:00+14:00"}, "due_at"),
        ({"text": "x", "due_at": "9999-12-31T23:59:59-12:00"}, "due_at"),
        ({"text": "call\u0000back", "due_at": ago(days=-1)}, "text"),
        ({"text": "x", "due_at": ago(days=-1), "agent": "kim\u0000"}, "agent"),
    ]:
        response = await client.post(f"/v1/customers/{customer}/promises", json=body, headers=admin)
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == field, response.text
    for body, field in [
        ({"status": "kept", "note": "a\u0000"}, "note"),
        ({"status": "kept", "actor": "b\u0000"}, "actor"),
    ]:
        response = await client.patch(f"/v1/customers/{customer}/promises/{made[0]['id']}", json=body, headers=admin)
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == field, response.text
    nowhere = await client.post(
        f"/v1/customers/{customer}/promises",
        json={"text": "x", "due_at": ago(days=-1), "interaction_id": "00000000-0000-7000-8000-000000000000"},
        headers=admin,
    )
    assert nowhere.status_code == 400 and nowhere.json()["errors"][0]["field"] == "interaction_id", nowhere.text
    missing = await client.get("/v1/customers/00000000-0000-7000-8000-000000000000/promises", headers=auth)
    assert missing.status_code == 404


async def test_suppress_offers_after_three_dropped_calls_in_a_day_and_not_after_two(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    dropped = [
        event(f"drop-{n}", "voice", PHONE, status=status, occurred_at=ago(hours=n + 1))
        for n, status in enumerate(("abandoned", "no_answer"))
    ]
    await post(client, auth, *dropped, event("drop-old", "voice", PHONE, status="failed", occurred_at=ago(hours=30)))
    # Call-backs the customer did not pick up are the contact center's attempts, not the customer's failures.
    callbacks = [
        event(f"callback-{n}", "voice", PHONE, direction="outbound", status="no_answer", occurred_at=ago(hours=n + 3))
        for n in range(3)
    ]
    await post(client, auth, *callbacks)
    calm = await context(client, auth, phone="+14155550100")
    assert "suppress_offers" not in {g.flag for g in calm.guidance}
    # The unanswered calls are owed a call back (yesterday's too).
    assert [t.kind for t in calm.open_threads] == ["call_follow_up"] * 3

    await post(client, auth, event("drop-3", "voice", PHONE, status="busy", occurred_at=ago(minutes=10)))
    angry = await context(client, auth, phone="+14155550100")
    flags = {g.flag: g.reasons for g in angry.guidance}
    assert flags["suppress_offers"] == ["3 failed contacts in the last 24 h (abandoned, busy, no_answer)"]

    # A completed call afterwards answers the follow-ups.
    await post(client, auth, event("answered", "voice", PHONE, status="completed", occurred_at=ago(minutes=1)))
    assert (await context(client, auth, phone="+14155550100")).open_threads == []


async def test_complaint_vip_and_at_risk_flags(client: AsyncTestClient, auth: dict[str, str]) -> None:
    await post(
        client,
        auth,
        event("m1", "email", PHONE, occurred_at=ago(days=2), reason="complaint", attributes={"tier": "Gold"}),
        event("m2", "chat", PHONE, occurred_at=ago(days=1)),
        event("m3", "voice", PHONE, occurred_at=ago(hours=1), queue_wait_seconds=1900),
    )
    flags = {g.flag: g.reasons for g in (await context(client, auth, phone="+14155550100")).guidance}
    assert flags["suppress_offers"] == ["complaint on email within the repeat window"]
    assert flags["vip"] == ["tier gold (latest interaction)"]
    assert flags["at_risk"] == ["3 contacts within the repeat window", "waited 32 min on this journey"]


async def test_open_email_thread_awaits_a_reply_until_the_business_answers(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    email = ident("email", "ada@example.com", "signed")
    await post(
        client,
        auth,
        event("e1", "email", email, occurred_at=ago(hours=5), thread_key="t-1", subject="Refund?"),
        event("e2", "email", email, occurred_at=ago(hours=4), thread_key="t-2", subject="Address change"),
        event("e3", "email", email, direction="outbound", occurred_at=ago(hours=3), thread_key="t-2", status="sent"),
    )
    threads = (await context(client, auth, email="ada@example.com", verification="signed")).open_threads
    assert [(t.kind, t.thread_key, t.messages, t.subject) for t in threads] == [("email_thread", "t-1", 1, "Refund?")]


async def test_unverified_lookup_masks_bodies_and_other_identifiers_and_verified_one_does_not(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    results = await post(
        client,
        auth,
        event(
            "mail-1",
            "email",
            ident("email", "ada@example.com", "signed"),
            ident("phone", "+14155550100"),
            subject="Card problem",
            text="My card was charged twice",
            occurred_at=ago(hours=3),
        ),
    )
    await client.post(
        f"/v1/customers/{results[0]['customer_id']}/promises",
        json={"text": "Refund the double charge", "due_at": ago(days=-2)},
        headers=admin,
    )
    masked = await context(client, auth, phone="+14155550100")
    assert masked.match.lookup_verification == "unverified" and not masked.match.trusted
    entry = masked.timeline[0]
    assert entry.subject is None and entry.snippet is None
    assert (entry.channel, entry.status, entry.reason) == ("email", "completed", "billing")  # metadata stays
    values = {i.kind: (i.value, i.masked) for i in masked.customer.identifiers}
    assert values == {"phone": ("+14155550100", False), "email": ("•••om", True)}
    assert masked.promises[0].text is None and masked.promises[0].due_at is not None

    shown = await context(client, auth, phone="+14155550100", verification="carrier_attested")
    assert shown.match.trusted
    assert shown.timeline[0].subject == "Card problem"
    assert shown.timeline[0].snippet == "My card was charged twice"
    assert {i.kind: i.value for i in shown.customer.identifiers}["email"] == "ada@example.com"
    assert shown.promises[0].text == "Refund the double charge"


async def test_setting_full_view_shows_everything_to_unverified_lookups(
    settings: Settings, db: asyncpg.Connection
) -> None:
    key, _ = await create_key(db, "desk", ["ingest", "context:read"])
    headers = {"Authorization": f"Bearer {key}"}
    full = msgspec.structs.replace(settings, context_unverified_view="full")
    async with AsyncTestClient(app=create_app(full)) as client:
        await post(
            client,
            headers,
            event("mail-1", "email", ident("email", "ada@example.com"), ident("phone", "+14155550100"), subject="S"),
        )
        shown = await context(client, headers, phone="+14155550100")
    assert shown.match.trusted and shown.timeline[0].subject == "S"
    assert not any(i.masked for i in shown.customer.identifiers)


async def test_timeline_pages_back_with_the_cursor(client: AsyncTestClient, auth: dict[str, str]) -> None:
    events = [event(f"c-{n:02}", "sms", PHONE, occurred_at=ago(hours=n)) for n in range(25)]
    results = await post(client, auth, *events)
    customer = results[0]["customer_id"]
    first = await context(client, auth, phone="+14155550100", limit=10)
    assert len(first.timeline) == 10 and first.next_cursor
    seen = [str(e.interaction_id) for e in first.timeline]
    cursor = first.next_cursor
    while cursor:
        response = await client.get(
            f"/v1/customers/{customer}/timeline", params={"cursor": cursor, "limit": 10}, headers=auth
        )
        assert response.status_code == 200, response.text
        page = msgspec.json.decode(response.content, type=Timeline, strict=True)
        seen += [str(e.interaction_id) for e in page.entries]
        cursor = page.next_cursor
    by_time = [r["interaction_id"] for r in results]  # sent newest first
    assert seen == by_time
    bad = await client.get(f"/v1/customers/{customer}/timeline", params={"cursor": "nope"}, headers=auth)
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
    micros, rest = first.next_cursor.split("~", 1)
    for forged in (f"{micros[:2]}_{micros[2:]}~{rest}", f" {micros}~{rest}", f"{micros.translate(_ARABIC)}~{rest}"):
        response = await client.get(f"/v1/customers/{customer}/timeline", params={"cursor": forged}, headers=auth)
        assert response.status_code == 400, forged  # only the digits a cursor is written with
    missing = await client.get("/v1/customers/00000000-0000-7000-8000-000000000000/timeline", headers=auth)
    assert missing.status_code == 404


async def test_the_pages_after_a_masked_context_stay_masked(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    texts = [
        event(f"t-{n}", "sms", PHONE, text=f"my card ending 99{n} was charged twice", occurred_at=ago(hours=n))
        for n in range(4)
    ]
    customer = (await post(client, auth, *texts))[0]["customer_id"]

    async def pages(cursor: str | None, **params: Any) -> list[Timeline]:
        found = []
        while cursor:
            response = await client.get(
                f"/v1/customers/{customer}/timeline", params={"cursor": cursor, "limit": 1, **params}, headers=auth
            )
            assert response.status_code == 200, response.text
            found.append(msgspec.json.decode(response.content, type=Timeline, strict=True))
            cursor = found[-1].next_cursor
        return found

    # Caller ID only: the context is masked, and so is every page a desktop fetches with its cursor.
    masked = await context(client, auth, phone="+14155550100", limit=1)
    assert masked.timeline[0].snippet is None and masked.next_cursor and masked.next_cursor.endswith("~masked")
    followed = await pages(masked.next_cursor)
    assert len(followed) == 3 and all(e.snippet is None for p in followed for e in p.entries)
    # …even when the desktop then says it trusts the contact: it asks the context again for an unmasked cursor.
    assert (await pages(masked.next_cursor, verification="authenticated"))[0].entries[0].snippet is None
    shown = await context(client, auth, phone="+14155550100", limit=1, verification="carrier_attested")
    assert shown.timeline[0].snippet == "my card ending 990 was charged twice"
    assert [p.entries[0].snippet for p in await pages(shown.next_cursor)] == [
        f"my card ending 99{n} was charged twice" for n in (1, 2, 3)
    ]
    # A page asked for by customer id is trusted (the agent chose the customer) unless the desktop says otherwise.
    plain = await client.get(f"/v1/customers/{customer}/timeline", params={"verification": "unverified"}, headers=auth)
    assert [e["snippet"] for e in plain.json()["entries"]] == [None] * 4
    logged = await db.fetch(
        "select masked from context_access where route = 'timeline' and customer_id = $1 order by id", UUID(customer)
    )
    assert [r["masked"] for r in logged] == [True] * 6 + [False] * 3 + [True]
    bad = await client.get(
        f"/v1/customers/{customer}/timeline", params={"cursor": masked.next_cursor + "~x"}, headers=auth
    )
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]


async def test_lookup_parameters_are_checked(client: AsyncTestClient, auth: dict[str, str]) -> None:
    for params in ({}, {"phone": "+14155550100", "email": "a@example.com"}):
        response = await client.get("/v1/context", params=params, headers=auth)
        assert response.status_code == 400
        assert "exactly one of phone, email, chat, account, customer_id" in response.json()["detail"]
    assert (await client.get("/v1/context", params={"customer_id": "x"}, headers=auth)).status_code == 400
    assert (
        await client.get("/v1/context", params={"phone": "1", "verification": "maybe"}, headers=auth)
    ).status_code == 400
    missing = await client.get(
        "/v1/context", params={"customer_id": "00000000-0000-7000-8000-000000000000"}, headers=auth
    )
    assert missing.status_code == 404
    assert (await client.get("/v1/context", params={"phone": "+14155550100"})).status_code == 401
    nul = await client.get("/v1/context", params={"chat": "intercom:u\x0042"}, headers=auth)
    assert nul.status_code == 400 and "NUL" in nul.json()["detail"] and nul.json()["errors"][0]["field"] == "chat"


async def test_every_read_is_in_the_access_log(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str], db: asyncpg.Connection
) -> None:
    results = await post(client, auth, event("call-1", "voice", PHONE))
    customer = results[0]["customer_id"]
    await context(client, auth, phone="(415) 555-0100")
    await context(client, auth, phone="+19995550000")
    await client.get(f"/v1/customers/{customer}/timeline", headers=auth)
    desk_key = await db.fetchval("select id from api_key where name = 'tests'")

    response = await client.get("/v1/context/access-log", params={"api_key_id": str(desk_key)}, headers=admin)
    assert response.status_code == 200, response.text
    rows = response.json()
    assert [(r["route"], r["match_status"], r["identifier_value"], r["masked"]) for r in rows] == [
        ("timeline", "found", None, False),
        ("context", "unknown", "+19995550000", True),
        ("context", "found", "+14155550100", True),
    ]
    assert rows[0]["customer_id"] == customer and rows[2]["customer_id"] == customer
    mine = (await client.get("/v1/context/access-log", params={"customer_id": customer}, headers=admin)).json()
    assert len(mine) == 2
    assert (await client.get("/v1/context/access-log", headers=auth)).status_code == 403
    naive = await client.get("/v1/context/access-log", params={"from": "2026-11-30T09:00:00"}, headers=admin)
    assert naive.status_code == 400
    for name, moment in (("from", "0001-01-01T00:00:00+14:00"), ("to", "9999-12-31T23:59:59-14:00")):
        far = await client.get("/v1/context/access-log", params={name: moment}, headers=admin)
        assert far.status_code == 400 and far.json()["errors"][0]["field"] == name, far.text


async def test_a_merged_customer_id_answers_with_the_whole_group(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    a = (await post(client, auth, event("call-1", "voice", PHONE, occurred_at=ago(hours=3))))[0]["customer_id"]
    b = await post(client, auth, event("mail-1", "email", ident("email", "ada@example.com"), occurred_at=ago(hours=2)))
    b = b[0]["customer_id"]
    merged = await client.post(
        f"/v1/customers/{a}/merge", json={"customer_id": b, "reason": "same person"}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    found = await context(client, auth, customer_id=b)
    assert str(found.customer.id) == a and [str(m) for m in found.customer.merged_customer_ids] == [b]
    assert [e.channel for e in found.timeline] == ["email", "voice"]
    assert found.repeat.contacts == 2


async def test_a_chat_of_many_messages_is_one_contact_and_coming_back_days_later_is_a_repeat(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    handle = ident("chat", "intercom:u-42", "authenticated")
    messages = [
        event(f"msg-{n}", "chat", handle, occurred_at=ago(days=2, minutes=-2 * n), thread_key="conv-1")
        for n in range(5)
    ]
    await post(client, auth, *messages)
    first = await context(client, auth, chat="intercom:u-42")
    assert first.repeat.contacts == 1 and not any(e.repeat for e in first.timeline)
    assert first.effort.interactions == 5 and first.effort.contacts == 1
    # The same conversation picked up two days later (no answer came): the customer had to come back. The new
    # message (5 minutes old, nothing after it) is the contact in front of the agent; it repeats the one before.
    back = await post(client, auth, event("msg-later", "chat", handle, occurred_at=ago(minutes=5), thread_key="conv-1"))
    later = await context(client, auth, chat="intercom:u-42")
    assert later.repeat.is_repeat and later.repeat.contacts == 1
    assert str(later.repeat.current_interaction_id) == back[0]["interaction_id"]
    assert [e.repeat for e in later.timeline] == [True, False, False, False, False, False]


async def test_the_contact_in_front_of_the_agent_is_not_counted_as_the_customer_coming_back(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    # A first-time caller whose ringing call the platform has already reported: not a repeat.
    ringing = event("call-new", "voice", PHONE, occurred_at=ago(seconds=20), status="ringing")
    call = (await post(client, auth, ringing))[0]["interaction_id"]
    first = await context(client, auth, phone="+14155550100")
    assert not first.repeat.is_repeat and first.repeat.contacts == 0 and first.repeat.channels == []
    assert str(first.repeat.current_interaction_id) == call
    assert not [g for g in first.guidance if g.flag == "at_risk"]
    # Once the call has ended, a lookup stands for a new contact: the customer called within the window.
    await post(client, auth, {**ringing, "status": "completed", "ended_at": ago(seconds=5), "revision": 2})
    after = await context(client, auth, phone="+14155550100")
    assert after.repeat.is_repeat and after.repeat.contacts == 1 and after.repeat.current_interaction_id is None
    assert after.repeat.last_contact_at is not None

    # An email received a minute ago, unanswered, is the current contact; a call two days before makes it a repeat.
    mail = ident("email", "grace@example.com")
    await post(client, auth, event("call-old", "voice", ident("phone", "+14155550122"), mail, occurred_at=ago(days=2)))
    new_mail = (await post(client, auth, event("mail-new", "email", mail, occurred_at=ago(minutes=1))))[0]
    back = await context(client, auth, email="grace@example.com")
    assert back.repeat.is_repeat and back.repeat.contacts == 1 and back.repeat.channels == ["voice"]
    assert str(back.repeat.current_interaction_id) == new_mail["interaction_id"]
    # The desktop may name the contact in front of the agent: the older call, with nothing before it.
    named = await context(client, auth, email="grace@example.com", interaction_id=back.timeline[1].interaction_id)
    assert not named.repeat.is_repeat and named.repeat.contacts == 0
    assert named.repeat.current_interaction_id == back.timeline[1].interaction_id
    # An id that is not one of this customer's interactions is ignored: the latest contact is the current one.
    stranger = await context(client, auth, email="grace@example.com", interaction_id=call)
    assert stranger.repeat.current_interaction_id == back.repeat.current_interaction_id


async def test_the_contact_in_front_of_the_agent_includes_its_own_messages_replies_and_transfer_legs(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    # A first text, the customer's second text 10 s later (the same conversation) and the agent's reply: the
    # conversation is live, the first text is the contact in front of the agent, and the customer is not back.
    texter = ident("phone", "+14155550133")
    opened = await post(
        client,
        auth,
        event("sms-1", "sms", texter, occurred_at=ago(minutes=3), thread_key="t-1"),
        event("sms-2", "sms", texter, occurred_at=ago(minutes=3, seconds=-10), thread_key="t-1"),
        event("sms-3", "sms", texter, direction="outbound", occurred_at=ago(minutes=2), thread_key="t-1"),
    )
    texts = await context(client, auth, phone="+14155550133")
    assert not texts.repeat.is_repeat and texts.repeat.contacts == 0
    assert str(texts.repeat.current_interaction_id) == opened[0]["interaction_id"]

    # A call transferred to a second agent: the first leg has ended, the second is under way; the call is the contact.
    caller = ident("phone", "+14155550144")
    legs = await post(
        client,
        auth,
        event("leg-a", "voice", caller, occurred_at=ago(minutes=6), ended_at=ago(minutes=2), status="completed"),
        event("leg-b", "voice", caller, occurred_at=ago(minutes=2), status="in_progress",
              details={"parent_call_id": "leg-a"}),
    )  # fmt: skip
    transferred = await context(client, auth, phone="+14155550144")
    assert not transferred.repeat.is_repeat and transferred.repeat.contacts == 0
    assert str(transferred.repeat.current_interaction_id) == legs[0]["interaction_id"]
    # Naming the leg in front of the agent gives the same answer.
    named = await context(client, auth, phone="+14155550144", interaction_id=legs[1]["interaction_id"])
    assert str(named.repeat.current_interaction_id) == legs[0]["interaction_id"] and named.repeat.contacts == 0

    # A call never reported ended, five hours ago, is not live any more: a lookup now stands for a new contact.
    stale = ident("phone", "+14155550155")
    await post(client, auth, event("stale", "voice", stale, occurred_at=ago(hours=5), status="in_progress"))
    later = await context(client, auth, phone="+14155550155")
    assert later.repeat.is_repeat and later.repeat.contacts == 1 and later.repeat.current_interaction_id is None
