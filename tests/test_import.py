"""Bulk import (`unify.importer`, `POST /v1/import`, `unify import FILE`) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from schemas import ImportReport
from tests.conftest import scratch_database
from tests.events import native_event
from tests.raw import TEST_KEYRING, open_raw
from unify import cli
from unify.errors import BadRequest
from unify.importer import DEFAULT_CHUNK_SIZE, ImportSource, import_file, parse_mapping
from unify.ingest import IngestOptions
from unify.privacy.setup import ingest_options
from unify.settings import Settings
from unify.store import connect, open_pool


def ident(kind: str, value: str, verification: str = "unverified") -> dict[str, str]:
    return {"kind": kind, "value": value, "verification": verification}


def event(external_id: str, channel: str, *identifiers: dict[str, str], name: str | None = None, **extra: Any) -> dict:
    return native_event(
        external_id,
        channel=channel,
        customer={"identifiers": list(identifiers), "display_name": name},
        details={"type": channel},
        **extra,
    )


def history() -> list[dict[str, Any]]:
    """A morning at a contact center: formatting variants, a call folding over three deliveries, a logged-in chat
    bridging a phone and an email, a spoofed caller ID, an anonymous call, a second email never seen with anything."""
    ada_phone, ada_mail, bob_phone, bob_mail = "+1 415-555-0100", "Ada <ADA@Example.com>", "(212) 555 0142", "bob@x.org"
    return [
        event("call-1", "voice", ident("phone", ada_phone, "carrier_attested"), status="ringing", revision=1),
        event("sms-1", "sms", ident("phone", "tel:+14155550100"), text="my bill is wrong"),
        event("mail-1", "email", ident("email", ada_mail, "signed"), name="Ada Lovelace"),
        event("call-1", "voice", ident("phone", ada_phone, "carrier_attested"), status="completed", revision=3),
        event(
            "chat-1",
            "chat",
            ident("phone", "whatsapp:+14155550100", "authenticated"),
            ident("email", "ada@example.com", "authenticated"),
            ident("account", "AC-1", "authenticated"),
            name="Ada Lovelace",
        ),
        event("call-2", "voice", ident("phone", bob_phone), name="Bob"),
        event("mail-2", "email", ident("email", bob_mail)),
        # Bob's caller ID in an event carrying Ada's email: weak evidence, a suggestion at most.
        event("call-3", "voice", ident("phone", bob_phone), ident("email", "ada@example.com", "signed")),
        event("call-4", "voice", ident("phone", "anonymous")),
        event("call-1", "voice", ident("phone", ada_phone, "carrier_attested"), status="in_progress", revision=2),
        event("chat-2", "chat", ident("account", "AC-2", "authenticated"), ident("email", bob_mail, "authenticated")),
        event("call-5", "voice", ident("phone", bob_phone, "authenticated"), ident("account", "AC-2", "authenticated")),
        event("mail-3", "email", ident("email", "ada.second@example.com")),
        event("sms-2", "sms", ident("phone", "+14155550100"), text="card 4242 4242 4242 4242 exp 12/29"),
    ]


def jsonl(events: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@pytest.fixture
def options(settings: Settings) -> IngestOptions:
    return ingest_options(settings)


@pytest.fixture
def other_database_url(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    with scratch_database(pg_admin_dsn) as dsn:
        yield dsn


async def run_import(
    pool: asyncpg.Pool, data: bytes, options: IngestOptions, *, name: str = "history.jsonl", **kwargs: Any
) -> ImportReport:
    fmt = kwargs.pop("fmt", "csv" if name.endswith(".csv") else "jsonl")
    return await import_file(pool, ImportSource.from_bytes(name, data), fmt=fmt, options=options, **kwargs)


async def stream(client: AsyncTestClient, auth: dict[str, str], events: list[dict[str, Any]]) -> None:
    """Ingest the events one request each, as a platform streams them."""
    for body in events:
        response = await client.post("/v1/interactions", json=body, headers=auth)
        assert response.status_code in (200, 201), response.text


async def state(conn: asyncpg.Connection) -> dict[str, Any]:
    """Everything streaming and import must agree on, without ids or times of processing."""
    interactions = await conn.fetch(
        """select source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
                  agent, queue, thread_key, subject, reason, disposition, queue_wait_seconds, hold_seconds,
                  talk_seconds, transfer_count, event, identified, redactions, interaction_customer(id) as customer,
                  (select d.kind || ':' || d.value from identifier d where d.id = owner_identifier_id) as owner
           from interaction order by source, external_id"""
    )
    # Customers as the partition of interactions they make (their ids differ between the databases).
    groups: dict[Any, list[str]] = {}
    for row in interactions:
        if row["customer"] is not None:
            groups.setdefault(row["customer"], []).append(row["external_id"])
    identifiers = await conn.fetch(
        """select d.kind, d.value, d.verification, d.first_seen, d.last_seen, d.shared, d.link_rule,
                  d.link_verification, (select array_agg(i2.external_id order by i2.external_id)
                                        from interaction i2 where i2.id = d.linked_by_interaction) as linked_by,
                  (select count(*) from identifier o join customer oc on oc.id = o.customer_id
                   join customer c on c.id = d.customer_id where oc.root_id = c.root_id) as group_size
           from identifier d order by kind, value"""
    )
    links = await conn.fetch(
        """select i.external_id, d.kind, d.value, ii.verification
           from interaction_identifier ii join interaction i on i.id = ii.interaction_id
           join identifier d on d.id = ii.identifier_id order by 1, 2, 3"""
    )
    return {
        "interactions": [{k: v for k, v in dict(r).items() if k != "customer"} for r in interactions],
        "groups": sorted(sorted(g) for g in groups.values()),
        "identifiers": [dict(r) for r in identifiers],
        "links": [dict(r) for r in links],
        "customers": await conn.fetchval("select count(*) from customer"),
        "roots": await conn.fetchval("select count(*) from customer where root_id = id"),
        "named_roots": sorted(
            (
                await conn.fetchval(
                    "select array_agg(display_name order by display_name) from customer where root_id = id"
                )
            )
            or [],
            key=str,
        ),
        "merges": [tuple(r) for r in await conn.fetch("select rule, verification from customer_merge order by 1, 2")],
        "suggestions": [
            tuple(r)
            for r in await conn.fetch(
                "select status, verification, evidence_count from merge_suggestion order by 1, 2, 3"
            )
        ],
        "usage": await conn.fetchval("select count(*) from identifier_usage"),
    }


async def import_elsewhere(
    url: str,
    options: IngestOptions,
    files: list[tuple[str, list[dict[str, Any]]]],
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[list[ImportReport], dict[str, Any], list[dict[str, Any]]]:
    """Import each (name, events) file in turn into the database at `url`: the reports, the database's `state`, and
    what each chunk recorded of itself."""
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        reports = [
            await run_import(pool, jsonl(events), options, name=name, chunk_size=chunk_size) for name, events in files
        ]
        async with pool.acquire() as conn:
            counts = [
                r["counts"] for r in await conn.fetch("select counts from import_chunk order by import_id, chunk_no")
            ]
            return reports, await state(conn), counts
    finally:
        await pool.close()


@pytest.mark.parametrize("chunk_size", [1, 4, 1000])
async def test_jsonl_import_is_what_streaming_makes(
    client: AsyncTestClient,
    auth: dict[str, str],
    db: asyncpg.Connection,
    other_database_url: str,
    options: IngestOptions,
    chunk_size: int,
) -> None:
    events = history()
    await stream(client, auth, events)

    [report], imported, _ = await import_elsewhere(
        other_database_url, options, [("history.jsonl", events)], chunk_size=chunk_size
    )
    assert imported == await state(db)

    assert (report.imported, report.updated, report.duplicates) == (12, 1, 1)  # call-1: rev 3 then 2 fills, 1 lost
    assert report.unidentified == 1  # the anonymous call
    assert report.invalid == 0 and report.resumed is False
    # Customers still standing at the end of the chunk that created them (a later chunk may merge some).
    roots = await db.fetchval("select count(*) from customer where root_id = id")
    assert report.customers_created == roots if chunk_size > len(events) else report.customers_created >= roots
    assert report.suggestions == await db.fetchval("select count(*) from merge_suggestion")
    assert report.lines == len(events) and report.chunks == -(-len(events) // chunk_size)


async def test_import_matches_streaming_when_identifiers_are_already_known(
    client: AsyncTestClient,
    auth: dict[str, str],
    db: asyncpg.Connection,
    other_database_url: str,
    options: IngestOptions,
) -> None:
    # The second half meets identifiers the first half made known: these take the set-based way in the import.
    events = history()
    later = [
        {**e, "external_id": f"{e['external_id']}-later", "occurred_at": "2026-11-01T08:00:00Z"}
        | ({"answered_at": None, "ended_at": None} if "answered_at" in e else {})
        for e in events
    ]
    later[2]["customer"] = {**later[2]["customer"], "display_name": "Ada L."}
    await stream(client, auth, events + later)

    [_, report], imported, _ = await import_elsewhere(
        other_database_url, options, [("first.jsonl", events), ("later.jsonl", later)]
    )
    assert imported == await state(db)
    assert report.customers_created == 0


async def test_first_contacts_named_together_import_as_they_stream(
    client: AsyncTestClient,
    auth: dict[str, str],
    db: asyncpg.Connection,
    other_database_url: str,
    options: IngestOptions,
) -> None:
    # Sets of identifiers nobody knew, each named only together: linked in bulk, with the ids the rule would draw
    # (the interaction's owner among equals is the identifier inserted first). A set with two account numbers is
    # split by the limit, which only the rule does.
    zoe = (ident("account", "AC-7", "authenticated"), ident("email", "zoe@example.com", "authenticated"))
    events = [
        event("chat-1", "chat", *zoe, ident("phone", "+1 415 555 0123", "authenticated"), name="Zoe"),
        event("call-1", "voice", ident("phone", "+1 212 555 0187", "carrier_attested")),
        event("chat-2", "chat", *zoe, ident("phone", "(415) 555-0123", "carrier_attested")),
        event("chat-3", "chat", ident("account", "AC-8", "authenticated"), ident("account", "AC-9", "authenticated")),
        event("call-2", "voice", ident("phone", "+1 212 555 0187"), name="Yan"),
    ]
    await stream(client, auth, events)

    [report], imported, [counts] = await import_elsewhere(other_database_url, options, [("history.jsonl", events)])
    assert imported == await state(db)
    assert (counts["first"], counts["linked"]) == (4, 1)
    assert report.customers_created == 4  # Zoe, Yan, and AC-8 and AC-9 apart (a conflicting suggestion)


def random_history(seed: int, count: int = 160) -> list[dict[str, Any]]:
    """Events over a small pool of identifiers, at random levels, with repeated keys and revisions: enough collisions
    for every branch of the rule (newcomers, merges, suggestions, limits, shared identifiers)."""
    rng = random.Random(seed)
    phones = [f"+1 415 555 01{i:02d}" for i in range(10)] + ["anonymous"]
    emails = [f"person{i}@example.com" for i in range(8)] + ["noreply@example.com"]
    levels = ["unverified", "unverified", "carrier_attested", "signed", "authenticated"]
    events = []
    for n in range(count):
        identifiers = []
        for _ in range(rng.choice([1, 1, 2, 2, 3])):
            kind = rng.choice(["phone", "phone", "email", "email", "account", "chat"])
            value = {
                "phone": lambda: rng.choice(phones),
                "email": lambda: rng.choice(emails),
                "account": lambda: f"AC-{rng.randrange(6)}",
                "chat": lambda: f"visitor-{rng.randrange(6)}",
            }[kind]()
            identifiers.append(ident(kind, value, rng.choice(levels)))
        channel = rng.choice(["voice", "sms", "email", "chat"])
        key = f"{channel}-{rng.randrange(count // 2) if rng.random() < 0.3 else n}"
        events.append(
            event(
                key,
                channel,
                *identifiers,
                name=rng.choice([None, None, f"Name {rng.randrange(5)}"]),
                revision=rng.randrange(4),
                status=rng.choice(["completed", "in_progress", "received"]),
                occurred_at=f"2026-11-0{rng.randrange(1, 9)}T09:{rng.randrange(60):02d}:00Z",
                answered_at=None,
                ended_at=None,
            )
        )
    return events


@pytest.mark.parametrize(("seed", "chunk_size"), [(1, 7), (2, 40), (3, 1000)])
async def test_random_histories_import_as_they_stream(
    client: AsyncTestClient,
    auth: dict[str, str],
    db: asyncpg.Connection,
    other_database_url: str,
    options: IngestOptions,
    seed: int,
    chunk_size: int,
) -> None:
    events = random_history(seed)
    half = len(events) // 2
    await stream(client, auth, events)

    _, imported, counts = await import_elsewhere(
        other_database_url, options, [("first.jsonl", events[:half]), ("second.jsonl", events[half:])], chunk_size
    )
    assert imported == await state(db)
    ways = {way: sum(c[way] for c in counts) for way in ("recorded", "linked")}
    assert ways["recorded"] > 0 and ways["linked"] > 0  # both ways were taken
    assert await db.fetchval("select count(*) from customer_merge") > 0
    assert await db.fetchval("select count(*) from merge_suggestion") > 0


async def test_same_events_in_another_file_are_duplicates(
    pool: asyncpg.Pool, db: asyncpg.Connection, options: IngestOptions
) -> None:
    events = history()
    first = await run_import(pool, jsonl(events), options, name="a.jsonl")
    again = await run_import(pool, b"\n" + jsonl(events[::-1]), options, name="b.jsonl")
    assert again.resumed is False and again.chunks_skipped == 0
    assert (again.imported, again.updated, again.duplicates) == (0, 0, len(events))
    assert again.customers_created == 0 and again.suggestions == 0
    assert first.import_id != again.import_id
    assert await db.fetchval("select count(*) from interaction") == 12


async def test_bad_line_is_reported_kept_raw_and_the_rest_imported(
    pool: asyncpg.Pool, db: asyncpg.Connection, options: IngestOptions
) -> None:
    good = [event(f"sms-{i}", "sms", ident("phone", f"+1415555010{i}")) for i in range(4)]
    bad_field = json.dumps({**good[0], "external_id": "sms-x", "channel": "fax"}).encode()
    lines = [json.dumps(good[0]).encode(), b"{not json", json.dumps(good[1]).encode(), bad_field, b"[1]", b""]
    data = b"\n".join([*lines, json.dumps(good[2]).encode(), json.dumps(good[3]).encode()]) + b"\n"

    report = await run_import(pool, data, options, chunk_size=3)
    assert (report.imported, report.invalid, report.lines) == (4, 3, 8)
    assert [(e.line, e.field) for e in report.errors] == [(2, "$"), (4, "$.channel"), (5, "$")]
    assert "malformed JSON" in report.errors[0].message
    assert "fax" in report.errors[1].message or "channel" in report.errors[1].message

    rejected = await db.fetch("select * from raw_event where status = 'rejected' order by id")
    assert [open_raw(r) for r in rejected] == [b"{not json\n", bad_field + b"\n", b"[1]\n"]
    assert rejected[1]["route"] == "import"
    assert rejected[1]["error"]["detail"].startswith("line 4: ")
    assert rejected[1]["error"]["errors"][0]["field"] == "$.channel"
    # The whole file is kept, chunk by chunk, in order.
    chunks = await db.fetch("select * from raw_event where status = 'processed' order by id")
    assert b"".join(open_raw(r) for r in chunks) == data
    assert chunks[0]["event_keys"] == ["native/sms-0", "native/sms-1"]
    assert chunks[0]["content_type"] == "application/x-ndjson"


async def test_failed_chunk_is_kept_and_the_next_run_resumes(
    pool: asyncpg.Pool, db: asyncpg.Connection, options: IngestOptions
) -> None:
    events = [event(f"sms-{i}", "sms", ident("phone", f"+1415555{i:04d}")) for i in range(10)]
    data = jsonl(events)
    # A real failure inside PostgreSQL on the 7th event (chunk 4 of 5).
    await db.execute(
        """create function fail_sms_6() returns trigger language plpgsql as $$
           begin raise exception 'disk on fire'; end $$;
           create trigger fail_sms_6 before insert on interaction for each row
           when (new.external_id = 'sms-6') execute function fail_sms_6();"""
    )
    with pytest.raises(asyncpg.RaiseError, match="disk on fire"):
        await run_import(pool, data, options, chunk_size=2)
    assert await db.fetchval("select count(*) from interaction") == 6
    failed = await db.fetchrow("select * from raw_event where status = 'failed'")
    assert open_raw(failed) == jsonl(events[6:8])
    assert "disk on fire" in failed["error"]["detail"]

    await db.execute("drop trigger fail_sms_6 on interaction")
    report = await run_import(pool, data, options, chunk_size=2)
    assert report.resumed is True
    assert (report.chunks, report.chunks_skipped, report.lines_skipped) == (5, 3, 6)
    assert (report.imported, report.duplicates) == (4, 0)
    assert await db.fetchval("select count(*) from interaction") == 10
    assert await db.fetchval("select count(*) from customer") == 10


async def test_interrupted_import_resumes_with_its_own_chunk_size(
    pool: asyncpg.Pool, db: asyncpg.Connection, options: IngestOptions
) -> None:
    events = [event(f"chat-{i}", "chat", ident("chat", f"visitor-{i % 4}")) for i in range(9)]
    data = jsonl(events)

    class Interrupted(Exception):
        pass

    def stop_after_two_chunks(done: int, total: int) -> None:
        if done >= len(jsonl(events[:4])):
            raise Interrupted

    with pytest.raises(Interrupted):
        await run_import(pool, data, options, chunk_size=2, progress=stop_after_two_chunks)
    assert await db.fetchval("select count(*) from interaction") == 4

    report = await run_import(pool, data, options, chunk_size=500)  # the import keeps the size it started with
    assert report.resumed is True
    assert (report.chunks, report.chunks_skipped, report.imported, report.duplicates) == (5, 2, 5, 0)
    assert await db.fetchval("select count(*) from interaction") == 9
    assert await db.fetchval("select count(*) from customer") == 4

    done = await run_import(pool, data, options)
    assert (done.chunks_skipped, done.imported, done.duplicates) == (5, 0, 0)


async def test_concurrent_runs_of_one_import_apply_each_chunk_once(
    database_url: str, db: asyncpg.Connection, options: IngestOptions
) -> None:
    events = [event(f"sms-{i}", "sms", ident("phone", f"+1415555{i % 7:04d}")) for i in range(30)]
    pool = await open_pool(database_url, min_size=4, max_size=4)
    try:
        first, second = await asyncio.gather(
            run_import(pool, jsonl(events), options, chunk_size=3),
            run_import(pool, jsonl(events), options, chunk_size=3),
        )
    finally:
        await pool.close()
    assert first.imported + second.imported == 30
    assert first.chunks_skipped + second.chunks_skipped == 10
    assert first.duplicates == second.duplicates == 0
    assert await db.fetchval("select count(*) from interaction") == 30
    assert await db.fetchval("select count(*) from customer") == 7
    assert await db.fetchval("select count(*) from import_chunk") == 10


async def test_first_contact_linked_in_bulk_yields_to_an_ingest_that_took_it_first(
    database_url: str, db: asyncpg.Connection, options: IngestOptions
) -> None:
    # A caller's first two texts in a chunk are first contacts, linked in bulk; streaming ingest links the same
    # number in a transaction still open while the chunk is classified. The import then waits for it and, the
    # number taken, leaves those rows to the rule: one customer, the one ingest made.
    events = [event(f"sms-{i}", "sms", ident("phone", "+1 415 555 0177"), name="Dora") for i in range(2)]
    events.append(event("mail-1", "email", ident("email", "eve@example.com")))
    ingest = await connect(database_url)
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        transaction = ingest.transaction()
        await transaction.start()
        streamed = await ingest.fetchval(
            "select link_interaction_identifiers(null, '{phone}', '{+14155550177}', '{authenticated}', now(), "
            "null, '{}')"
        )
        importing = asyncio.ensure_future(run_import(pool, jsonl(events), options))
        for _ in range(200):
            waiting = await db.fetchval(
                "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()"
            )
            if waiting or importing.done():
                break
            await asyncio.sleep(0.05)
        assert waiting == 1, "the import did not wait for the open ingest"
        await transaction.commit()
        report = await importing
    finally:
        await pool.close()
        await ingest.close()
    assert report.imported == 3 and report.customers_created == 1  # Eve's
    owners = await db.fetch(
        "select i.external_id, interaction_customer(i.id) as customer from interaction i order by 1"
    )
    assert {r["external_id"]: r["customer"] for r in owners if r["external_id"] != "mail-1"} == {
        "sms-0": streamed,
        "sms-1": streamed,
    }
    phone = await db.fetchrow("select * from identifier where kind = 'phone'")
    assert phone["customer_id"] == streamed and phone["linked_by_interaction"] is None
    assert await db.fetchval("select count(*) from customer") == 2  # ingest's and Eve's: none made for nothing
    assert await db.fetchval("select display_name from customer where id = $1", streamed) == "Dora"


CONTACTS = (
    "AccountNo,Email,Mobile,FullName,Notes\n"
    'AC-100,Ada <ADA@example.com>,(415) 555-0100,Ada Lovelace,"likes\n'
    'tea"\n'
    "AC-200,grace@example.com,+1 212 555 0142,Grace Hopper,\n"
    ",noreply@example.com,anonymous,Nobody,\n"
    "AC-300,alan@example.com,+44 20 7946 0000,Alan Turing,extra,field\n"
)


async def test_csv_contacts_link_account_email_and_phone_into_one_customer(
    pool: asyncpg.Pool, db: asyncpg.Connection, options: IngestOptions
) -> None:
    mapping = parse_mapping("account=AccountNo,email=Email,phone=Mobile,name=FullName")
    report = await run_import(pool, CONTACTS.encode(), options, name="crm.csv", mapping=mapping)
    assert (report.imported, report.unidentified, report.invalid) == (2, 1, 1)
    assert report.customers_created == 2
    assert [(e.line, e.message) for e in report.errors] == [(6, "the row has 6 fields, the header 5")]

    rows = await db.fetch(
        """select d.kind, d.value, d.link_verification, d.linked_by, d.link_rule, c.root_id, c.display_name
           from identifier d join customer c on c.id = d.customer_id order by d.kind, d.value"""
    )
    ada = [r for r in rows if r["display_name"] == "Ada Lovelace"]
    assert [(r["kind"], r["value"]) for r in ada] == [
        ("account", "AC-100"),
        ("email", "ada@example.com"),
        ("phone", "+14155550100"),
    ]
    assert len({r["root_id"] for r in ada}) == 1
    assert {(r["link_verification"], r["linked_by"]) for r in rows} == {("authenticated", "import:crm.csv")}

    # A later call from that number, written differently, finds the CRM customer.
    calls = await run_import(
        pool, jsonl([event("call-9", "voice", ident("phone", "+1 415 555 0100"))]), options, name="calls.jsonl"
    )
    assert calls.customers_created == 0
    customer = await db.fetchval("select interaction_customer(id) from interaction where external_id = 'call-9'")
    assert customer == ada[0]["root_id"]

    # Another export of the same contacts (a byte order mark, another column name): nothing new.
    again = await run_import(
        pool, ("\ufeff" + CONTACTS.replace("Notes", "Remarks")).encode(), options, name="crm2.csv", mapping=mapping
    )
    assert (again.imported, again.duplicates, again.customers_created) == (0, 2, 0)
    chunk = await db.fetchrow("select * from raw_event where status = 'processed' and content_type = 'text/csv'")
    assert open_raw(chunk) == CONTACTS.encode()


async def test_csv_of_phone_numbers_alone_makes_one_customer_per_number(
    pool: asyncpg.Pool, db: asyncpg.Connection, options: IngestOptions
) -> None:
    # Every row a first contact linked in bulk: counted as imported, the first name given kept.
    data = "Mobile,FullName\n(415) 555-0101,\n+1 415 555 0101,Ann\n(212) 555 0199,Ben\n415.555.0101,Annie\n"
    report = await run_import(
        pool, data.encode(), options, name="phones.csv", mapping=parse_mapping("phone=Mobile,name=FullName")
    )
    assert (report.imported, report.duplicates, report.customers_created) == (4, 0, 2)
    rows = await db.fetch(
        """select d.value, d.link_rule, c.display_name from identifier d join customer c on c.id = d.customer_id
           order by d.value"""
    )
    assert [tuple(r) for r in rows] == [
        ("+12125550199", "first-contact", "Ben"),
        ("+14155550101", "first-contact", "Ann"),
    ]
    again = await run_import(
        pool, data.encode(), options, name="phones-again.csv", mapping=parse_mapping("phone=Mobile")
    )
    assert (again.imported, again.duplicates, again.customers_created) == (0, 4, 0)


async def test_csv_mapping_errors_are_clear(pool: asyncpg.Pool, options: IngestOptions) -> None:
    with pytest.raises(BadRequest, match="no column 'Phone'"):
        await run_import(pool, CONTACTS.encode(), options, name="crm.csv", mapping=parse_mapping("phone=Phone"))
    with pytest.raises(BadRequest, match="KIND=COLUMN"):
        parse_mapping("fax=Fax")
    with pytest.raises(BadRequest, match="at least one identifier"):
        parse_mapping("name=FullName")
    with pytest.raises(BadRequest, match="verification"):
        parse_mapping("phone=Mobile", "trusted")


async def test_http_import_of_jsonl_and_csv(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    events = history()
    response = await client.post(
        "/v1/import", content=jsonl(events), headers={**auth, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["imported"], report["updated"], report["duplicates"], report["format"]) == (12, 1, 1, "jsonl")
    assert report["file_name"] == "upload"

    again = (
        await client.post("/v1/import", content=jsonl(events), headers={**auth, "Content-Type": "application/jsonl"})
    ).json()
    assert (again["resumed"], again["chunks_skipped"], again["imported"]) == (True, 1, 0)

    response = await client.post(
        "/v1/import",
        params={"map": "account=AccountNo,email=Email,phone=Mobile,name=FullName", "name": "crm.csv"},
        content=CONTACTS.encode(),
        headers={**auth, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["imported"], response.json()["invalid"]) == (2, 1)
    linked_by = await db.fetchval("select linked_by from identifier where value = 'grace@example.com'")
    assert linked_by == "import:crm.csv"


@pytest.mark.parametrize(
    ("content_type", "params", "status", "field"),
    [
        ("application/json", {}, 415, "content-type"),
        ("text/csv", {}, 400, "map"),
        ("text/csv", {"map": "phone=Mobile,fax=Fax"}, 400, "map"),
        ("text/csv", {"map": "phone=Phone"}, 400, "map"),
        ("text/csv", {"map": "phone=Mobile", "verification": "sure"}, 400, "verification"),
    ],
)
async def test_http_import_refusals_are_problems_and_kept_raw(
    client: AsyncTestClient,
    auth: dict[str, str],
    db: asyncpg.Connection,
    content_type: str,
    params: dict[str, str],
    status: int,
    field: str,
) -> None:
    response = await client.post(
        "/v1/import", params=params, content=CONTACTS.encode(), headers={**auth, "Content-Type": content_type}
    )
    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == field
    raw = await db.fetchrow("select * from raw_event where id = $1", problem["raw_event_id"])
    assert raw["status"] == "rejected" and open_raw(raw) == CONTACTS.encode()
    assert await db.fetchval("select count(*) from identifier") == 0


async def test_http_import_has_its_own_body_limit(client: AsyncTestClient, auth: dict[str, str]) -> None:
    # Larger than UNIFY_MAX_BODY_BYTES (64 KiB in the tests) but within UNIFY_MAX_IMPORT_BYTES (256 KiB): imported.
    roomy = jsonl([event(f"sms-{i}", "sms", ident("phone", "+14155550100"), text="x" * 1000) for i in range(80)])
    assert 65_536 < len(roomy) < 262_144
    response = await client.post("/v1/import", content=roomy, headers={**auth, "Content-Type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 80
    # Past the import limit: 413, naming the setting, and the first bytes kept raw.
    big = jsonl([event(f"sms-{i}", "sms", ident("phone", "+14155550100"), text="x" * 1000) for i in range(300)])
    response = await client.post("/v1/import", content=big, headers={**auth, "Content-Type": "application/x-ndjson"})
    assert response.status_code == 413
    assert "UNIFY_MAX_IMPORT_BYTES" in response.json()["detail"] and response.json()["raw_event_id"]


async def test_http_import_needs_the_ingest_scope(client: AsyncTestClient) -> None:
    response = await client.post("/v1/import", content=b"{}\n", headers={"Content-Type": "application/x-ndjson"})
    assert response.status_code == 401


def test_cli_import_prints_the_report(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("UNIFY_RAW_KEYS", TEST_KEYRING.to_setting())
    monkeypatch.setenv("UNIFY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UNIFY_LOG_FORMAT", "json")
    monkeypatch.setenv("UNIFY_LOG_LEVEL", "warning")
    events_file = tmp_path / "history.jsonl"
    events_file.write_bytes(jsonl(history()))
    assert cli.main(["import", str(events_file), "--chunk-size", "3"]) == 0
    report = msgspec.json.decode(capsys.readouterr().out, type=ImportReport)
    assert (report.imported, report.chunks, report.file_name) == (12, 5, "history.jsonl")

    assert cli.main(["import", str(events_file)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["chunks_skipped"] == 5
    assert "resumed" in captured.err

    contacts = tmp_path / "crm-export.txt"
    contacts.write_text(CONTACTS)
    assert (
        cli.main(["import", str(contacts), "--format", "csv", "--map", "email=Email", "--verification", "signed"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["customers_created"] == 1  # ada@ is known already, alan's row invalid

    assert cli.main(["import", str(contacts)]) == 2
    assert "--format" in capsys.readouterr().err

    async def linked() -> list[str]:
        conn = await connect(database_url)
        try:
            rows = await conn.fetch("select value from identifier where linked_by = 'import:crm-export.txt'")
            return [r["value"] for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(linked()) == ["grace@example.com"]
