"""Erasure (`DELETE /v1/customers/{id}`) and export (`GET /v1/customers/{id}/export`) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from httpx import Response
from litestar.testing import AsyncTestClient

from schemas import CustomerExport, ErasureReceipt
from tests.events import native_event
from unify.auth import create_key

# Ada called, texted and emailed: three interactions, three identifiers (as sent, and as stored).
ADA_VALUES = ("+14155550100", "ada@example.com", "ACC-778812")
ADA_AS_SENT = ("415-555-0100", "(415) 555 0100", "ADA@Example.com", "Lovelace", "bill from 2 Nov is wrong")
GRACE_VALUES = ("+12125550199", "grace@example.org")


@pytest.fixture
async def admin(db: asyncpg.Connection) -> tuple[UUID, dict[str, str]]:
    key, record = await create_key(db, "dpo", ["admin"])
    return record.id, {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin_auth(admin: tuple[UUID, dict[str, str]]) -> dict[str, str]:
    return admin[1]


def ada_events() -> list[dict[str, Any]]:
    call = native_event(
        "ada-call",
        customer={
            "identifiers": [
                {"kind": "phone", "value": "+1 415-555-0100", "verification": "carrier_attested"},
                {"kind": "account", "value": "ACC-778812", "verification": "authenticated"},
            ],
            "display_name": "Ada Lovelace",
        },
    )
    sms = native_event(
        "ada-sms",
        channel="sms",
        status="received",
        answered_at=None,
        ended_at=None,
        talk_seconds=None,
        customer={"identifiers": [{"kind": "phone", "value": "(415) 555 0100"}]},
        text="My bill from 2 Nov is wrong",
        details={"type": "sms", "segments": 1},
    )
    mail = native_event(
        "ada-mail",
        channel="email",
        status="received",
        answered_at=None,
        ended_at=None,
        talk_seconds=None,
        customer={
            "identifiers": [
                {"kind": "email", "value": "Ada Lovelace <ADA@Example.com>", "verification": "signed"},
                {"kind": "phone", "value": "+14155550100"},
            ],
            "display_name": "Ada Lovelace",
        },
        subject="Wrong bill",
        text="Hello, my bill from 2 Nov is wrong. You can call me on 415-555-0100. Ada",
        details={"type": "email", "message_id": "<ada-1@example.com>"},
    )
    return [call, sms, mail]


def grace_events() -> list[dict[str, Any]]:
    call = native_event(
        "grace-call",
        customer={
            "identifiers": [{"kind": "phone", "value": "+1 212-555-0199"}],
            "display_name": "Grace Hopper",
        },
    )
    mail = native_event(
        "grace-mail",
        channel="email",
        status="received",
        answered_at=None,
        ended_at=None,
        talk_seconds=None,
        customer={
            "identifiers": [
                {"kind": "email", "value": "grace@example.org"},
                {"kind": "phone", "value": "+12125550199"},
            ]
        },
        text="Please send the invoice again.",
        details={"type": "email", "message_id": "<grace-1@example.org>"},
    )
    return [call, mail]


async def _ingest(client: AsyncTestClient, auth: dict[str, str], events: list[dict[str, Any]]) -> UUID:
    """Post each event on its own; returns the customer they all belong to."""
    customers = set()
    for event in events:
        response = await client.post("/v1/interactions", json=event, headers=auth)
        assert response.status_code == 201, response.text
        customers.add(response.json()["customer_id"])
    [customer] = customers
    return UUID(customer)


async def _pending_fragment(db: asyncpg.Connection, group: str, phone: str) -> int:
    """Part 1 of 2 of a split SMS, as a webhook would keep it (with its raw delivery). Returns the raw event id."""
    body = f"From={phone}&Body=first+half&MessageSid=SM{group}".encode()
    raw_id = await db.fetchval(
        "insert into raw_event (route, body, body_size, status) values ('twilio-sms', $1, $2, 'processed') "
        "returning id",
        body,
        len(body),
    )
    event = native_event(
        f"SM{group}",
        source="twilio-sms",
        channel="sms",
        status="received",
        answered_at=None,
        ended_at=None,
        talk_seconds=None,
        customer={"identifiers": [{"kind": "phone", "value": phone}]},
        text="first half",
        details={"type": "sms", "segments": 2},
    )
    await db.execute(
        "insert into message_fragment (connector, group_key, part_index, part_total, text, event, raw_event_id) "
        "values ('twilio-sms', $1, 1, 2, 'first half', $2, $3)",
        group,
        event,
        raw_id,
    )
    return raw_id


async def _mentions(db: asyncpg.Connection, needle: str) -> dict[str, int]:
    """Rows of every table of the public schema with a column that contains `needle` (case-insensitive)."""
    columns = await db.fetch(
        "select c.table_name, c.column_name, c.data_type from information_schema.columns c "
        "join information_schema.tables t using (table_schema, table_name) "
        "where c.table_schema = 'public' and t.table_type = 'BASE TABLE' order by 1, 2"
    )
    assert {"identifier", "interaction", "raw_event", "erasure_log"} <= {c["table_name"] for c in columns}
    found: dict[str, int] = {}
    for column in columns:
        name = f'"{column["column_name"]}"'
        text = f"encode({name}, 'escape')" if column["data_type"] == "bytea" else f"{name}::text"
        count = await db.fetchval(
            f'select count(*) from "{column["table_name"]}" where strpos(lower({text}), lower($1)) > 0', needle
        )
        if count:
            found[f"{column['table_name']}.{column['column_name']}"] = count
    return found


async def _export(client: AsyncTestClient, auth: dict[str, str], customer: UUID) -> CustomerExport:
    response = await client.get(f"/v1/customers/{customer}/export", headers=auth)
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=CustomerExport)


async def _erase(client: AsyncTestClient, auth: dict[str, str], customer: UUID, body: object) -> Response:
    return await client.request("DELETE", f"/v1/customers/{customer}", json=body, headers=auth)


def _without_time(export: CustomerExport) -> CustomerExport:
    return msgspec.structs.replace(export, exported_at=export.customer.created_at)


# ---------------------------------------------------------------------------------------------------------------
# Export


async def test_export_holds_every_interaction_and_identifier_of_the_customer_and_nothing_else(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    ada = await _ingest(client, auth, ada_events())
    grace = await _ingest(client, auth, grace_events())

    response = await client.get(f"/v1/customers/{ada}/export", headers=admin_auth)
    assert response.status_code == 200, response.text
    export = msgspec.json.decode(response.content, type=CustomerExport)

    assert export.customer.id == ada
    assert export.customer.display_name == "Ada Lovelace"
    assert [(i.kind, i.value) for i in export.identifiers] == [
        ("account", "ACC-778812"),
        ("email", "ada@example.com"),
        ("phone", "+14155550100"),
    ]
    phone = export.identifiers[2]
    assert (phone.verification, phone.link_rule) == ("carrier_attested", "first-contact")
    assert phone.linked_at is not None and phone.first_seen <= phone.last_seen
    by_key = {i.event.external_id: i for i in export.interactions}
    assert set(by_key) == {"ada-call", "ada-sms", "ada-mail"}
    assert phone.linked_by_interaction == by_key["ada-call"].id
    # The full stored event, texts included.
    assert by_key["ada-sms"].event.text == "My bill from 2 Nov is wrong"
    assert by_key["ada-mail"].event.subject == "Wrong bill"
    assert by_key["ada-call"].event.talk_seconds == 465
    assert (export.merges, export.promises) == ([], [])
    # Nothing of Grace's.
    for value in (*GRACE_VALUES, "Grace", "grace-", str(grace)):
        assert value.lower() not in response.text.lower()

    # The same as the customer endpoint says.
    customer = (await client.get(f"/v1/customers/{ada}", headers=auth)).json()
    assert [(i["kind"], i["value"]) for i in customer["identifiers"]] == [(i.kind, i.value) for i in export.identifiers]

    grace_export = await _export(client, admin_auth, grace)
    assert {i.value for i in grace_export.identifiers} == set(GRACE_VALUES)
    assert {i.event.external_id for i in grace_export.interactions} == {"grace-call", "grace-mail"}


async def test_export_needs_admin_and_an_existing_customer(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    ada = await _ingest(client, auth, ada_events()[:1])
    assert (await client.get(f"/v1/customers/{ada}/export", headers=auth)).status_code == 403
    assert (await client.get(f"/v1/customers/{ada}/export")).status_code == 401
    unknown = await client.get("/v1/customers/01890a5d-ac96-774b-bcce-b302099a8057/export", headers=admin_auth)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


# ---------------------------------------------------------------------------------------------------------------
# Erasure


async def test_erasure_leaves_no_trace_of_the_customer_and_spares_the_other(
    client: AsyncTestClient,
    auth: dict[str, str],
    admin: tuple[UUID, dict[str, str]],
    db: asyncpg.Connection,
) -> None:
    admin_id, admin_auth = admin
    ada = await _ingest(client, auth, ada_events())
    grace = await _ingest(client, auth, grace_events())
    # Promises made to both, and their contexts read: by number, and by a number nobody has yet but Ada's own
    # formatting of it (a lookup that names her value without finding her).
    for customer, phone in ((ada, "(415) 555 0100"), (grace, "+12125550199")):
        promised = await client.post(
            f"/v1/customers/{customer}/promises",
            json={"text": "Call back about the refund", "due_at": "2030-01-01T09:00:00Z"},
            headers=admin_auth,
        )
        assert promised.status_code == 201, promised.text
        assert (await client.get("/v1/context", params={"phone": phone}, headers=auth)).status_code == 200
    await db.execute("update identifier set shared = true where value = '+14155550100'")
    assert (await client.get("/v1/context", params={"phone": "415-555-0100"}, headers=auth)).json()["customer"] is None
    await db.execute("update identifier set shared = false where value = '+14155550100'")
    ada_fragment_raw = await _pending_fragment(db, "ada-part", "+14155550100")
    grace_fragment_raw = await _pending_fragment(db, "grace-part", "+12125550199")
    ada_raw = {
        r["raw_event_id"] for r in await db.fetch("select raw_event_id from interaction where external_id like 'ada-%'")
    } | {ada_fragment_raw}
    grace_before = await _export(client, admin_auth, grace)
    raw_before = await db.fetchval("select count(*) from raw_event")
    # The search below does find the customer before the erasure.
    for value in ADA_VALUES:
        assert {"identifier.value", "interaction.event"} <= set(await _mentions(db, value))
    assert "message_fragment.event" in await _mentions(db, "+14155550100")

    response = await _erase(client, admin_auth, ada, {"reason": "GDPR art. 17 request, ticket DPO-2291"})

    assert response.status_code == 200, response.text
    receipt = msgspec.json.decode(response.content, type=ErasureReceipt)
    assert msgspec.structs.asdict(receipt.counts) == {
        "interactions": 3,
        "identifiers": 3,
        "raw_events": 4,  # one per interaction, and the pending fragment's
        "fragments": 1,
        "merges": 0,
        "suggestions": 0,
        "promises": 1,
        "context_reads": 2,
    }
    # No row of any table mentions an identifier, the name or the texts of the customer any more.
    for needle in (*ADA_VALUES, *ADA_AS_SENT, str(ada)):
        assert await _mentions(db, needle) == {}, needle
    # Raw bodies may be stored encrypted, out of the search's sight: those of the customer go by id.
    assert await db.fetchval("select count(*) from raw_event where id = any($1::bigint[])", list(ada_raw)) == 0
    assert await db.fetchval("select count(*) from raw_event") == raw_before - 4
    assert await db.fetchval("select count(*) from customer") == 1

    # The audit row: who, why, how many; nothing personal.
    log = await db.fetchrow("select * from erasure_log")
    assert (log["id"], log["erased_at"]) == (receipt.id, receipt.erased_at)
    assert log["actor"] == admin_id
    assert log["reason"] == "GDPR art. 17 request, ticket DPO-2291"
    assert log["counts"] == msgspec.structs.asdict(receipt.counts)
    assert set(log.keys()) == {"id", "erased_at", "actor", "reason", "counts"}

    # Grace is untouched: the same export, her raw deliveries and her pending fragment still there.
    assert _without_time(await _export(client, admin_auth, grace)) == _without_time(grace_before)
    assert await db.fetchval("select count(*) from raw_event where id = $1", grace_fragment_raw) == 1
    assert await db.fetchval("select count(*) from message_fragment where group_key = 'grace-part'") == 1
    for value in GRACE_VALUES:
        assert "identifier.value" in await _mentions(db, value)

    # Ada is gone for every endpoint.
    assert (await client.get(f"/v1/customers/{ada}", headers=auth)).status_code == 404
    assert (await client.get(f"/v1/customers/{ada}/export", headers=admin_auth)).status_code == 404
    assert (await _erase(client, admin_auth, ada, {"reason": "asked twice"})).status_code == 404


async def test_an_erased_phone_that_comes_back_starts_a_new_customer(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    ada = await _ingest(client, auth, ada_events())
    assert (await _erase(client, admin_auth, ada, {"reason": "customer request"})).status_code == 200

    again = native_event("ada-call-2", customer={"identifiers": [{"kind": "phone", "value": "+1 415-555-0100"}]})
    response = await client.post("/v1/interactions", json=again, headers=auth)
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["customer_id"] not in (None, str(ada))
    export = await _export(client, admin_auth, UUID(result["customer_id"]))
    assert export.customer.display_name is None
    [phone] = export.identifiers
    assert (phone.value, phone.link_rule) == ("+14155550100", "first-contact")
    assert phone.linked_by_interaction == UUID(result["interaction_id"])
    assert [i.event.external_id for i in export.interactions] == ["ada-call-2"]
    assert await db.fetchval("select count(*) from interaction") == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "no"},
        {"reason": "   ok   "},
        {"reason": "x" * 501},
        {"reason": 42},
        {"reason": "fine", "customer": "extra field"},
        None,
    ],
    ids=["missing", "empty", "too-short", "blank-padded", "too-long", "not-text", "unknown-field", "no-body"],
)
async def test_erasure_without_a_valid_reason_is_400_and_erases_nothing(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection, body: object
) -> None:
    ada = await _ingest(client, auth, ada_events()[:1])
    if body is None:
        response = await client.request("DELETE", f"/v1/customers/{ada}", headers=admin_auth)
    else:
        response = await _erase(client, admin_auth, ada, body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await db.fetchval("select count(*) from customer") == 1
    assert await db.fetchval("select count(*) from erasure_log") == 0


@pytest.mark.parametrize(
    "reason",
    [
        "Ada Lovelace asked to be forgotten",
        "caller +1 (415) 555-0100 asked by phone",
        "request from ADA@example.com",
        "account acc-778812 closed",
        "customer {customer} asked",
    ],
)
async def test_a_reason_naming_the_customer_is_refused(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection, reason: str
) -> None:
    ada = await _ingest(client, auth, ada_events())
    response = await _erase(client, admin_auth, ada, {"reason": reason.format(customer=ada)})
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "$.reason"
    # The problem does not echo what it found (the customer's id is only in `instance`, the path asked for).
    said = f"{problem['detail']} {problem['errors']}".lower()
    for value in (*ADA_VALUES, "Lovelace", "415", str(ada)):
        assert value.lower() not in said
    assert await db.fetchval("select count(*) from interaction") == 3
    assert await db.fetchval("select count(*) from erasure_log") == 0
    # A reason that only looks a little like the customer is fine.
    assert (await _erase(client, admin_auth, ada, {"reason": "Adam's ticket 4155"})).status_code == 200


async def test_erasure_needs_admin(client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection) -> None:
    ada = await _ingest(client, auth, ada_events()[:1])
    response = await _erase(client, auth, ada, {"reason": "customer request"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await _erase(client, {}, ada, {"reason": "customer request"})).status_code == 401
    assert await db.fetchval("select count(*) from customer") == 1


async def test_erasing_an_unknown_customer_is_404(
    client: AsyncTestClient, admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    response = await _erase(
        client, admin_auth, UUID("01890a5d-ac96-774b-bcce-b302099a8057"), {"reason": "customer request"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await db.fetchval("select count(*) from erasure_log") == 0


def _in_thread(request: Coroutine[Any, Any, Response]) -> asyncio.Task[Response]:
    """Send a request from a thread of its own. The test client hands each request to the app's event loop and
    blocks its caller until the response, so requests sent from this loop would run one after the other, and one
    waiting for a lock held here would block the test itself."""
    return asyncio.create_task(asyncio.to_thread(asyncio.run, request))


async def _wait_for_lock_waits(db: asyncpg.Connection, count: int) -> None:
    """Until `count` other sessions of this database wait for a lock."""
    for _ in range(500):
        await db.execute("select pg_stat_clear_snapshot()")  # activity is read once per transaction otherwise
        waiting = await db.fetchval(
            "select count(*) from pg_stat_activity "
            "where datname = current_database() and wait_event_type = 'Lock' and pid <> pg_backend_pid()"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} sessions waiting for a lock")


async def _assert_whole(db: asyncpg.Connection, erased: UUID) -> None:
    """Every interaction linked to an identifier, every link to live rows, nothing owned by the erased customer."""
    assert await db.fetchval("select count(*) from customer where id = $1", erased) == 0
    orphans = await db.fetchval(
        "select count(*) from interaction i "
        "where not exists (select 1 from interaction_identifier ii where ii.interaction_id = i.id)"
    )
    dangling = await db.fetchval(
        "select count(*) from interaction_identifier ii "
        "where not exists (select 1 from interaction i where i.id = ii.interaction_id) "
        "   or not exists (select 1 from identifier d where d.id = ii.identifier_id)"
    )
    unowned = await db.fetchval("select count(*) from identifier where customer_id is null")
    assert (orphans, dangling, unowned) == (0, 0, 0)


async def test_events_arriving_during_an_erasure_wait_and_then_start_a_new_customer(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    ada = await _ingest(client, auth, ada_events())
    racing = [native_event(f"ada-chat-{i}", channel="chat", details={"type": "chat"}) for i in range(4)]
    async with db.transaction():
        # Hold the customer row: the erasure locks the identifiers, then waits here; the events wait for the phone.
        await db.execute("select 1 from customer where id = $1 for update", ada)
        erasure = _in_thread(_erase(client, admin_auth, ada, {"reason": "customer request"}))
        await _wait_for_lock_waits(db, 1)
        ingests = [_in_thread(client.post("/v1/interactions", json=e, headers=auth)) for e in racing]
        # Two of them wait in the database (the server's group-commit writers); the others wait for a writer.
        await _wait_for_lock_waits(db, 1 + 2)
    erased = await erasure
    ingested = await asyncio.gather(*ingests)

    assert erased.status_code == 200, erased.text
    assert msgspec.json.decode(erased.content, type=ErasureReceipt).counts.interactions == 3
    assert [r.status_code for r in ingested] == [201] * len(racing), [r.text for r in ingested]
    await _assert_whole(db, ada)
    # One new customer owns the phone that came back, and every event that brought it.
    [new_customer] = {r.json()["customer_id"] for r in ingested}
    export = await _export(client, admin_auth, UUID(new_customer))
    assert [(i.kind, i.value, i.link_rule) for i in export.identifiers] == [("phone", "+14155550100", "first-contact")]
    assert {i.event.external_id for i in export.interactions} == {e["external_id"] for e in racing}
    assert await db.fetchval("select count(*) from interaction") == len(racing)


async def test_an_update_racing_the_erasure_deadlocks_one_side_which_retries(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    ada = await _ingest(client, auth, ada_events())
    # A later revision of a call being erased locks the interaction, then waits for the phone the erasure holds;
    # the erasure then wants the interaction. PostgreSQL aborts one of them and that one retries.
    update = native_event("ada-call", revision=5, disposition="resolved")
    async with db.transaction():
        await db.execute("select 1 from customer where id = $1 for update", ada)
        erasure = _in_thread(_erase(client, admin_auth, ada, {"reason": "customer request"}))
        await _wait_for_lock_waits(db, 1)
        ingest = _in_thread(client.post("/v1/interactions", json=update, headers=auth))
        await _wait_for_lock_waits(db, 2)
    erased, ingested = await erasure, await ingest

    assert erased.status_code == 200, erased.text
    assert ingested.is_success, ingested.text
    await _assert_whole(db, ada)
    # Either the update went first and was erased with the rest, or it came after and started a new customer.
    survivor = await db.fetchrow("select id, event from interaction")
    erased_interactions = msgspec.json.decode(erased.content, type=ErasureReceipt).counts.interactions
    assert erased_interactions == 3
    if survivor is None:
        assert ingested.json()["outcome"] == "updated"
    else:
        assert survivor["event"]["disposition"] == "resolved"
        assert ingested.json()["customer_id"] not in (None, str(ada))


async def test_an_identifier_linked_while_the_erasure_waits_is_erased_too(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    ada = await _ingest(client, auth, ada_events())
    event = native_event(
        "ada-chat",
        channel="chat",
        details={"type": "chat"},
        customer={"identifiers": [{"kind": "phone", "value": "+14155550100"}, {"kind": "email", "value": "a@b.org"}]},
    )
    async with db.transaction():
        await db.execute("select 1 from identifier where value = '+14155550100' for update")
        # The event takes its new email, then waits for the phone; the erasure queues behind it for the phone.
        ingest = _in_thread(client.post("/v1/interactions", json=event, headers=auth))
        await _wait_for_lock_waits(db, 1)
        erasure = _in_thread(_erase(client, admin_auth, ada, {"reason": "customer request"}))
        await _wait_for_lock_waits(db, 2)
    # The event links the new email to the customer and commits before the erasure has locked the customer row.
    assert (await ingest).status_code == 201
    erased = await erasure

    assert erased.status_code == 200, erased.text
    counts = msgspec.json.decode(erased.content, type=ErasureReceipt).counts
    assert (counts.interactions, counts.identifiers) == (4, 4)
    await _assert_whole(db, ada)
    for needle in (*ADA_VALUES, "a@b.org"):
        assert await _mentions(db, needle) == {}, needle


async def test_superseded_raw_deliveries_are_erased_too(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    ringing = native_event("ada-call", status="ringing", revision=1, answered_at=None, ended_at=None)
    ada = await _ingest(client, auth, [ringing])
    assert (await client.post("/v1/interactions", json=native_event("ada-call", revision=2), headers=auth)).is_success
    assert (await _erase(client, admin_auth, ada, {"reason": "customer request"})).status_code == 200
    assert await db.fetchval("select count(*) from raw_event") == 0


async def test_rejected_deliveries_that_mention_the_customer_are_erased_too(
    client: AsyncTestClient, auth: dict[str, str], admin_auth: dict[str, str], db: asyncpg.Connection
) -> None:
    ada = await _ingest(client, auth, ada_events())
    await _ingest(client, auth, grace_events())
    rejected = {
        # Invalid native events (the channel is unknown), stored encrypted as `rejected`: one names Ada's number in
        # another spelling, one her email address, one names Grace only.
        "ada-phone": native_event("bad-1", channel="fax", customer={}, text="call me back on (415) 555-0100"),
        "ada-email": native_event(
            "bad-2", channel="fax", customer={"identifiers": [{"kind": "email", "value": "ADA@example.com"}]}
        ),
        "grace": native_event("bad-3", channel="fax", customer={}, text="call me on 212 555 0199"),
    }
    ids = {}
    for name, body in rejected.items():
        response = await client.post("/v1/interactions", json=body, headers=auth)
        assert response.status_code == 400, response.text
        ids[name] = response.json()["raw_event_id"]
    # A form-encoded delivery keeps the number URL-encoded; a failed signature keeps it as `unverified`.
    form = await client.post(
        "/v1/webhooks/twilio-sms",
        content=b"MessageSid=SM1&From=%2B14155550100&To=%2B18005550199&Body=hi",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "forged"},
    )
    assert form.status_code in (401, 404), form.text
    if form.status_code == 401:
        ids["ada-form"] = form.json()["raw_event_id"]
    stored = {r["id"] for r in await db.fetch("select id from raw_event where status <> 'processed'")}
    assert set(ids.values()) <= stored
    assert all(b"415" not in bytes(r["body"]) for r in await db.fetch("select body from raw_event"))  # encrypted

    response = await _erase(client, admin_auth, ada, {"reason": "GDPR art. 17 request, ticket DPO-2292"})
    assert response.status_code == 200, response.text
    left = {r["id"] for r in await db.fetch("select id from raw_event where status <> 'processed'")}
    assert ids["grace"] in left
    assert not ({ids["ada-phone"], ids["ada-email"], ids.get("ada-form", 0)} & left)
    receipt = msgspec.json.decode(response.content, type=ErasureReceipt)
    assert receipt.counts.raw_events == 3 + len(ids) - 1  # her three interactions' deliveries and her rejected ones
