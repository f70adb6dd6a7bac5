"""Fuzzy merge suggestions: names that look alike, with the attributes two customers share, against a real
PostgreSQL; customers are made by posting events as clients do."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.events import native_event
from unify.errors import BadRequest
from unify.identity import identity_policy
from unify.identity.fuzzy import (
    CustomerProfile,
    FuzzyScanReport,
    name_key,
    name_similarity,
    scan_fuzzy_suggestions,
    score_pair,
)
from unify.settings import Settings

MIN = 0.85


def ident(kind: str, value: str, verification: str = "unverified") -> dict[str, str]:
    return {"kind": kind, "value": value, "verification": verification}


async def post(
    client: AsyncTestClient,
    auth: dict[str, str],
    external_id: str,
    channel: str,
    *identifiers: dict[str, str],
    name: str | None,
    **extra: Any,
) -> str:
    """Post one event; returns its customer."""
    body = native_event(
        external_id,
        channel=channel,
        customer={"identifiers": list(identifiers), "display_name": name},
        details={"type": channel},
        **extra,
    )
    response = await client.post("/v1/interactions", json=body, headers=auth)
    assert response.status_code in (200, 201), response.text
    customer: str = response.json()["customer_id"]
    assert customer
    return customer


async def scan(db: asyncpg.Connection, settings: Settings, **kwargs: Any) -> FuzzyScanReport:
    return await scan_fuzzy_suggestions(
        db,
        min_score=kwargs.pop("min_score", settings.fuzzy_min_score),
        limits=identity_policy(settings).limits,
        **kwargs,
    )


async def fuzzy_rows(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("select * from merge_suggestion where kind = 'fuzzy' order by created_at, id")


async def roots(db: asyncpg.Connection) -> dict[Any, Any]:
    return {r["id"]: r["root_id"] for r in await db.fetch("select id, root_id from customer")}


# --- through the database ----------------------------------------------------------------------------------------


async def test_similar_names_make_one_pending_suggestion_and_merge_nobody(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    by_mail = await post(client, auth, "mail-1", "email", ident("email", "jane.doe@example.com"), name="Jane Doe")
    by_chat = await post(client, auth, "chat-1", "chat", ident("chat", "web:visitor-77"), name="JANE DOE")
    assert by_mail != by_chat
    before = await roots(db)

    report = await scan(db, settings)

    assert report == FuzzyScanReport(min_score=MIN, candidates_compared=1, suggestions_created=1, conflicts=0)
    [row] = await fuzzy_rows(db)
    assert {str(row["customer_a"]), str(row["customer_b"])} == {by_mail, by_chat}
    assert row["status"] == "pending"
    assert row["conflict"] is None
    assert row["score"] >= MIN
    assert row["reasons"] == ["names 'Jane Doe' and 'JANE DOE' are 100% similar"]
    # Fuzzy evidence never merges.
    assert await roots(db) == before
    assert await db.fetchval("select count(*) from customer_merge") == 0


async def test_dissimilar_names_make_nothing(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "mail-1", "email", ident("email", "jane.doe@example.com"), name="Jane Doe")
    await post(client, auth, "chat-1", "chat", ident("chat", "web:visitor-77"), name="Robert Smith")
    await post(client, auth, "chat-2", "chat", ident("chat", "web:visitor-78"), name="Jane Smithers-Okonkwo")

    report = await scan(db, settings)

    assert report.suggestions_created == 0
    assert await fuzzy_rows(db) == []


async def test_scanning_twice_suggests_once(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "mail-1", "email", ident("email", "jane.doe@example.com"), name="Jane Doe")
    await post(client, auth, "chat-1", "chat", ident("chat", "web:visitor-77"), name="Doe, Jane")

    first = await scan(db, settings)
    second = await scan(db, settings)

    assert first.suggestions_created == 1
    assert second == FuzzyScanReport(min_score=MIN)  # the open pair is not even compared again
    assert len(await fuzzy_rows(db)) == 1


async def test_a_union_breaking_the_account_limit_is_a_conflict(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "call-1", "voice", ident("account", "A-1001", "authenticated"), name="Jane Doe")
    await post(client, auth, "call-2", "voice", ident("account", "A-2002", "authenticated"), name="Jane Doe")
    before = await roots(db)

    report = await scan(db, settings)

    assert (report.suggestions_created, report.conflicts) == (1, 1)
    [row] = await fuzzy_rows(db)
    assert row["status"] == "conflict"
    assert row["conflict"] == "account identifiers: 2 together, limit 1"
    assert await roots(db) == before


async def test_customers_already_merged_are_one_candidate(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    first = await post(client, auth, "call-1", "voice", ident("account", "A-1", "authenticated"), name="Jane Doe")
    second = await post(
        client, auth, "mail-1", "email", ident("email", "jd@example.com", "authenticated"), name="Jane  Doe"
    )
    # Both named at the merge level in one event: merged by the linking rule.
    merged = await post(
        client,
        auth,
        "call-2",
        "voice",
        ident("account", "A-1", "authenticated"),
        ident("email", "jd@example.com", "authenticated"),
        name="Jane Doe",
    )
    assert (
        await db.fetchval("select count(distinct root_id) from customer where id = any($1::uuid[])", [first, second])
        == 1
    )
    other = await post(client, auth, "chat-1", "chat", ident("chat", "web:v-9"), name="jane doe")

    await scan(db, settings)

    [row] = await fuzzy_rows(db)
    assert {str(row["customer_a"]), str(row["customer_b"])} == {merged, other}


async def test_shared_attributes_lift_a_weaker_name_match(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "mail-1", "email", ident("email", "jon.smyth@example.com"), name="Jon Smyth")
    await post(client, auth, "mail-2", "email", ident("email", "jon.smyth@example.org"), name="John Smith")
    await post(client, auth, "mail-3", "email", ident("email", "js@example.net"), name="John Smith Jr")

    # Jon Smyth / John Smith: 84%, too little alone; with the same local part, 92%. John Smith / John Smith Jr
    # (91%) needs nothing more.
    report = await scan(db, settings)

    rows = await fuzzy_rows(db)
    by_reason = {row["reasons"][0]: row for row in rows}
    assert report.suggestions_created == len(rows) == 2
    lifted = by_reason["names 'Jon Smyth' and 'John Smith' are 84% similar"]
    assert lifted["reasons"][1] == "same email local part jon.smyth (at example.com and example.org)"
    assert lifted["score"] == pytest.approx(1 - (1 - 0.8421) * 0.5, abs=1e-3)
    assert len(lifted["identifier_ids"]) == 2


async def test_a_common_name_needs_a_shared_attribute(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    for i in range(4):
        await post(client, auth, f"chat-{i}", "chat", ident("chat", f"web:v-{i}"), name="Maria Garcia")
    first = await post(client, auth, "mail-1", "email", ident("email", "maria.garcia@example.com"), name="María García")
    second = await post(
        client, auth, "mail-2", "email", ident("email", "maria.garcia@example.org"), name="Maria Garcia"
    )

    report = await scan(db, settings)

    # Six customers have the name: all fifteen pairs compared, one suggested.
    assert (report.candidates_compared, report.suggestions_created) == (15, 1)
    [row] = await fuzzy_rows(db)
    assert {str(row["customer_a"]), str(row["customer_b"])} == {first, second}
    assert row["reasons"] == [
        "names 'María García' and 'Maria Garcia' are 100% similar (a name 6 customers have counts for less)",
        "same email local part maria.garcia (at example.com and example.org)",
    ]
    assert row["score"] == pytest.approx(1 - (1 - 0.8) * 0.5)


async def test_placeholder_names_are_no_names(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "chat-1", "chat", ident("chat", "web:v-1"), name="Guest 4821")
    await post(client, auth, "chat-2", "chat", ident("chat", "web:v-2"), name="Guest 4822")
    await post(client, auth, "chat-3", "chat", ident("chat", "web:v-3"), name="Visitor")

    report = await scan(db, settings)

    assert report.candidates_compared == 0
    assert await fuzzy_rows(db) == []


async def test_decided_pairs_are_not_suggested_again(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "mail-1", "email", ident("email", "jane.doe@example.com"), name="Jane Doe")
    await post(client, auth, "chat-1", "chat", ident("chat", "web:visitor-77"), name="Jane Doe")
    await scan(db, settings)
    await db.execute("update merge_suggestion set status = 'rejected', decided_by = 'supervisor'")

    assert (await scan(db, settings)).suggestions_created == 0

    # Dismissed (not decided by a person): it may come back.
    await db.execute("update merge_suggestion set status = 'dismissed'")
    assert (await scan(db, settings)).suggestions_created == 1
    assert [r["status"] for r in await fuzzy_rows(db)] == ["dismissed", "pending"]


async def test_an_undone_merge_is_not_suggested_again(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "call-1", "voice", ident("account", "A-1", "authenticated"), name="Jane Doe")
    await post(client, auth, "mail-1", "email", ident("email", "jd@example.com", "authenticated"), name="Jane Doe")
    await post(
        client,
        auth,
        "call-2",
        "voice",
        ident("account", "A-1", "authenticated"),
        ident("email", "jd@example.com", "authenticated"),
        name="Jane Doe",
    )
    merge_id = await db.fetchval("select id from customer_merge")
    [undone] = await db.fetch("select * from undo_customer_merge($1, 'supervisor', 'two people')", merge_id)
    assert undone["o_refused"] is None

    report = await scan(db, settings)

    assert report.candidates_compared == 0
    assert await fuzzy_rows(db) == []


async def test_an_open_evidence_suggestion_is_not_repeated(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    await post(client, auth, "call-1", "voice", ident("account", "A-1", "authenticated"), name="Jane Doe")
    await post(client, auth, "call-2", "voice", ident("account", "A-2", "authenticated"), name="Jane Doe")
    # One event naming both accounts: the limit vetoes the merge, an evidence suggestion asks a person.
    await post(
        client,
        auth,
        "call-3",
        "voice",
        ident("account", "A-1", "authenticated"),
        ident("account", "A-2", "authenticated"),
        name="Jane Doe",
    )
    assert await db.fetchval("select count(*) from merge_suggestion where kind = 'evidence'") == 1

    report = await scan(db, settings)

    assert report.candidates_compared == 0
    assert await fuzzy_rows(db) == []


async def test_limit_bounds_the_pairs_compared(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, settings: Settings
) -> None:
    for i in range(4):
        await post(client, auth, f"chat-{i}", "chat", ident("chat", f"web:v-{i}"), name="Jane Doe")

    report = await scan(db, settings, limit=2)

    assert report.candidates_compared == 2
    assert report.suggestions_created == 2
    assert (await scan(db, settings)).suggestions_created == 4  # the other pairs of the six


async def test_bad_arguments_are_refused(db: asyncpg.Connection) -> None:
    with pytest.raises(BadRequest):
        await scan_fuzzy_suggestions(db, min_score=0, limits={})
    with pytest.raises(BadRequest):
        await scan_fuzzy_suggestions(db, min_score=0.9, limits={}, limit=-1)


async def test_cli_scan_prints_the_report(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection, database_url: str
) -> None:
    await post(client, auth, "mail-1", "email", ident("email", "jane.doe@example.com"), name="Jane Doe")
    await post(client, auth, "chat-1", "chat", ident("chat", "web:visitor-77"), name="Jane Doe")
    env = {**os.environ, "DATABASE_URL": database_url}

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "unify.cli",
        "identity",
        "scan",
        "--min-score",
        "0.9",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()

    assert json.loads(out) == {"min_score": 0.9, "candidates_compared": 1, "suggestions_created": 1, "conflicts": 0}
    assert len(await fuzzy_rows(db)) == 1


# --- scoring -----------------------------------------------------------------------------------------------------


def test_name_key_strips_accents_case_punctuation_and_placeholders() -> None:
    assert name_key("  Zoë O'Brien-Smith 2 ") == "zoe o brien smith"
    assert name_key("JOSÉ NÚÑEZ") == name_key("jose nunez") == "jose nunez"
    assert name_key("Guest 4821") is None
    assert name_key("WhatsApp User") is None
    assert name_key("12345") is None


def test_name_similarity_ignores_order_and_discounts_single_words() -> None:
    assert name_similarity("Doe, Jane", "jane  doe")[0] == 1.0
    single, reason = name_similarity("Jane", "jane")
    assert single == pytest.approx(0.8)
    assert reason == "names 'Jane' and 'jane' are 100% similar (a single word counts for less)"
    assert name_similarity("Guest 1", "Jane Doe") == (0.0, None)


def test_score_combines_name_and_shared_attributes() -> None:
    a = CustomerProfile(
        names={"Jane Doe": 1},
        emails=[(1, "info@acme.com")],
        phones=[(2, "+14155550100")],
        threads={"email:<root@acme.com>"},
    )
    b = CustomerProfile(
        names={"Janet Dough": 1},
        emails=[(3, "info@example.org")],  # a role mailbox: no evidence
        phones=[(4, "+444155550100")],
        threads={"email:<root@acme.com>", "chat:9"},
    )
    match = score_pair(a, b)
    name = name_similarity("Jane Doe", "Janet Dough")[0]
    assert match.score == pytest.approx(1 - (1 - name) * (1 - 0.5) * (1 - 0.4), abs=1e-4)
    assert match.reasons[1:] == [
        "same phone number 4155550100 under country codes +1 and +44",
        "same conversation thread email:<root@acme.com>",
    ]
    assert match.identifier_ids == [2, 4]


def test_same_last_digits_count_for_less_than_the_same_number() -> None:
    a = CustomerProfile(names={"Jane Doe": 1}, phones=[(1, "+14155550100")])
    b = CustomerProfile(names={"Robert Roe": 1}, phones=[(2, "+14085550100")])
    match = score_pair(a, b)
    name = name_similarity("Jane Doe", "Robert Roe")[0]
    assert match.score == pytest.approx(1 - (1 - name) * (1 - 0.35), abs=1e-4)
    assert match.reasons[-1] == "phone numbers +14155550100 and +14085550100 end in the same 7 digits"
    assert 0 <= match.score <= 1
    assert score_pair(CustomerProfile(), CustomerProfile()).score == 0.0


def test_a_common_name_alone_counts_for_less() -> None:
    similarity, reason = name_similarity("Maria Garcia", "MARIA GARCIA", holders=7)
    assert similarity == pytest.approx(0.8)
    assert (
        reason == "names 'Maria Garcia' and 'MARIA GARCIA' are 100% similar (a name 7 customers have counts for less)"
    )
