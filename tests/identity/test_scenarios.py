"""The identity resolver, end to end through the HTTP API: the scenarios a contact center meets every day."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from schemas import InteractionEvent
from tests.events import native_event
from unify.auth import create_key
from unify.identity.merges import detach_identifier
from unify.ingest import IngestOptions, RawDelivery, ingest_events
from unify.store import open_pool


@pytest.fixture
async def admin(db: asyncpg.Connection) -> dict[str, str]:
    key, _ = await create_key(db, "supervisor", ["admin"])
    return {"Authorization": f"Bearer {key}"}


def ident(kind: str, value: str, verification: str = "unverified") -> dict[str, str]:
    return {"kind": kind, "value": value, "verification": verification}


def event(external_id: str, channel: str, *identifiers: dict[str, str], name: str | None = None, **extra: Any) -> dict:
    details = {"type": channel}
    return native_event(
        external_id,
        channel=channel,
        customer={"identifiers": list(identifiers), "display_name": name},
        details=details,
        **extra,
    )


async def post(client: AsyncTestClient, auth: dict[str, str], body: dict) -> dict:
    response = await client.post("/v1/interactions", json=body, headers=auth)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def customer_of(client: AsyncTestClient, auth: dict[str, str], interaction_id: str) -> str | None:
    response = await client.get(f"/v1/interactions/{interaction_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()["customer_id"]


async def identity(client: AsyncTestClient, auth: dict[str, str], customer_id: str) -> dict:
    response = await client.get(f"/v1/customers/{customer_id}/identity", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def suggestions(client: AsyncTestClient, auth: dict[str, str], **params: str) -> list[dict]:
    response = await client.get("/v1/identity/suggestions", params=params, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def call_from_switchboard(
    client: AsyncTestClient, auth: dict[str, str], switchboard: str, person: int, prefix: str
) -> dict:
    """A call from the switchboard by person `person`, who logged in to the IVR with an account number of their own."""
    return await post(
        client,
        auth,
        event(
            f"{prefix}-{person}",
            "voice",
            ident("phone", switchboard, "carrier_attested"),
            ident("account", f"ACC-{person}", "authenticated"),
        ),
    )


PHONE = "+14155550100"
EMAIL = "ada@example.com"


async def test_call_text_email_then_logged_in_chat_is_one_customer_with_every_link_explained(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    call = await post(client, auth, event("call-1", "voice", ident("phone", "(415) 555-0100", "carrier_attested")))
    text = await post(client, auth, event("sms-1", "sms", ident("phone", "+1 415 555 0100")))
    mail = await post(client, auth, event("mail-1", "email", ident("email", "Ada <ADA@Example.com>", "signed")))
    assert call["customer_id"] == text["customer_id"] != mail["customer_id"]  # nothing links the email yet

    chat = await post(
        client,
        auth,
        event(
            "chat-1",
            "chat",
            ident("email", EMAIL, "authenticated"),
            ident("phone", PHONE, "authenticated"),
            ident("chat", "intercom:user-77", "authenticated"),
            name="Ada Lovelace",
        ),
    )
    one = chat["customer_id"]
    for created in (call, text, mail, chat):
        assert await customer_of(client, auth, created["interaction_id"]) == one

    explained = await identity(client, auth, one)
    by_value = {i["value"]: i for i in explained["identifiers"]}
    assert set(by_value) == {PHONE, EMAIL, "intercom:user-77"}
    assert by_value[PHONE]["link"] == {
        "rule": "first-contact",
        "linked_at": by_value[PHONE]["link"]["linked_at"],
        "verification": "carrier_attested",
        "interaction_id": call["interaction_id"],
        "actor": None,
    }
    assert by_value[EMAIL]["link"]["rule"] == "first-contact"
    assert by_value[EMAIL]["link"]["interaction_id"] == mail["interaction_id"]
    assert by_value["intercom:user-77"]["link"]["rule"] == "same-event"
    assert by_value["intercom:user-77"]["link"]["interaction_id"] == chat["interaction_id"]
    assert {i["verification"] for i in explained["identifiers"]} == {"authenticated"}
    # The email's customer joined on strong evidence: a merge record says which event, at which level.
    [merge] = explained["merges"]
    assert merge["rule"] == "strong-evidence"
    assert merge["verification"] == "authenticated"
    assert merge["interaction_id"] == chat["interaction_id"]
    assert merge["survivor_id"] == one
    assert by_value[EMAIL]["merge_id"] == merge["id"]
    assert explained["merged_customer_ids"] == [mail["customer_id"]]
    # Asking by the merged-away id answers with the customer it belongs to now.
    assert (await client.get(f"/v1/customers/{mail['customer_id']}", headers=auth)).json()["id"] == one


async def test_unverified_caller_id_naming_another_customers_email_suggests_and_never_merges(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    a = await post(client, auth, event("call-a", "voice", ident("phone", PHONE, "authenticated"), name="Ann"))
    b = await post(client, auth, event("mail-b", "email", ident("email", "bob@example.com", "signed"), name="Bob"))
    spoof = await post(
        client,
        auth,
        event("call-x", "voice", ident("phone", PHONE, "unverified"), ident("email", "bob@example.com")),
    )
    assert (await identity(client, auth, a["customer_id"]))["merges"] == []
    assert (await identity(client, auth, b["customer_id"]))["merges"] == []
    assert {i["value"] for i in (await identity(client, auth, a["customer_id"]))["identifiers"]} == {PHONE}
    [suggestion] = await suggestions(client, auth)
    assert suggestion["status"] == "pending"
    assert suggestion["kind"] == "evidence"
    assert suggestion["verification"] == "unverified"
    assert {suggestion["customer_a"], suggestion["customer_b"]} == {a["customer_id"], b["customer_id"]}
    assert suggestion["interaction_id"] == spoof["interaction_id"]
    # A repeat of the same weak evidence strengthens the suggestion, not the link.
    await post(client, auth, event("call-y", "voice", ident("phone", PHONE), ident("email", "bob@example.com")))
    [again] = await suggestions(client, auth)
    assert again["id"] == suggestion["id"] and again["evidence_count"] == 2


async def test_logged_in_stranger_calling_from_a_known_number_gets_a_customer_of_their_own(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    a = await post(client, auth, event("call-a", "voice", ident("phone", PHONE)))
    stranger = await post(
        client, auth, event("ivr-s", "voice", ident("phone", PHONE), ident("account", "ACC-2", "authenticated"))
    )
    assert stranger["customer_id"] != a["customer_id"]
    explained = await identity(client, auth, stranger["customer_id"])
    assert [i["value"] for i in explained["identifiers"]] == ["ACC-2"]
    assert [s["status"] for s in explained["suggestions"]] == ["pending"]


async def test_switchboard_used_by_five_people_is_shared_links_nobody_and_lookup_lists_candidates(
    client: AsyncTestClient, auth: dict[str, str]
) -> None:
    switchboard = "+1 212 555 0000"
    people = [(await call_from_switchboard(client, auth, switchboard, n, "call"))["customer_id"] for n in range(5)]
    assert len(set(people)) == 5
    lookup = (await client.get("/v1/identity/lookup", params={"phone": "(212) 555-0000"}, headers=auth)).json()
    assert lookup["status"] == "ambiguous"
    assert lookup["customer_id"] is None
    assert set(lookup["candidates"]) == set(people)
    # Nobody is linked through it any more: a plain call from the switchboard belongs to no one.
    plain = await post(client, auth, event("call-plain", "voice", ident("phone", switchboard, "carrier_attested")))
    assert plain["customer_id"] is None
    assert await customer_of(client, auth, plain["interaction_id"]) is None
    # And an unknown caller id next to it still starts a customer of its own, not anyone else's.
    other = await post(
        client, auth, event("call-new", "voice", ident("phone", switchboard), ident("phone", "+12125550199"))
    )
    assert other["customer_id"] not in people
    # The conflicting suggestions the switchboard caused on the way were dismissed with it.
    assert await suggestions(client, auth) == []
    dismissed = await suggestions(client, auth, status="dismissed")
    assert dismissed and {s["decided_by"] for s in dismissed} == {"shared-identifier"}


async def test_anonymous_caller_is_stored_unidentified(client: AsyncTestClient, auth: dict[str, str]) -> None:
    for n, caller in enumerate(("anonymous", "Restricted", "+266696687", "0000000000")):
        created = await post(client, auth, event(f"anon-{n}", "voice", ident("phone", caller)))
        assert created["outcome"] == "created"
        assert created["customer_id"] is None
        stored = (await client.get(f"/v1/interactions/{created['interaction_id']}", headers=auth)).json()
        assert stored["identified"] is False and stored["customer_id"] is None
        assert stored["event"]["customer"]["identifiers"][0]["value"] == caller  # kept as given
    lookup = (await client.get("/v1/identity/lookup", params={"phone": "anonymous"}, headers=auth)).json()
    assert lookup == {
        "status": "unknown",
        "kind": "phone",
        "value": None,
        "identifier_id": None,
        "verification": None,
        "customer_id": None,
        "candidates": [],
    }


async def test_two_account_numbers_veto_a_merge(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    one = await post(
        client,
        auth,
        event(
            "c1", "chat", ident("account", "ACC-1", "authenticated"), ident("email", "one@example.com", "authenticated")
        ),
    )
    two = await post(client, auth, event("c2", "chat", ident("account", "ACC-2", "authenticated")))
    # Strong evidence naming both: still no merge, a conflicting suggestion that says why.
    both = await post(
        client,
        auth,
        event(
            "c3", "chat", ident("email", "one@example.com", "authenticated"), ident("account", "ACC-2", "authenticated")
        ),
    )
    assert one["customer_id"] != two["customer_id"]
    [conflict] = await suggestions(client, auth)
    assert conflict["status"] == "conflict"
    assert conflict["conflict"] == "account identifiers: 2 together, limit 1"
    assert conflict["interaction_id"] == both["interaction_id"]
    # By hand: 409 naming the limit; accepting the suggestion is refused the same way.
    manual = await client.post(
        f"/v1/customers/{one['customer_id']}/merge",
        json={"customer_id": two["customer_id"], "reason": "same person says the agent"},
        headers=admin,
    )
    assert manual.status_code == 409
    assert "account identifiers: 2 together, limit 1" in manual.json()["detail"]
    accept = await client.post(
        f"/v1/identity/suggestions/{conflict['id']}/accept", json={"reason": "looks alike"}, headers=admin
    )
    assert accept.status_code == 409
    # An event bringing a second account number to a customer gives that number a customer of its own.
    third = await post(
        client,
        auth,
        event(
            "c4", "chat", ident("email", "one@example.com", "authenticated"), ident("account", "ACC-3", "authenticated")
        ),
    )
    accounts = [
        i["value"] for i in (await identity(client, auth, one["customer_id"]))["identifiers"] if i["kind"] == "account"
    ]
    assert accounts == ["ACC-1"]
    assert third["customer_id"] == one["customer_id"]


async def test_merge_then_undo_restores_both_customers_with_what_arrived_in_between(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    a1 = await post(client, auth, event("a-1", "voice", ident("phone", PHONE), name="Ann"))
    b1 = await post(client, auth, event("b-1", "email", ident("email", "bob@example.com"), name="Bob"))
    a, b = a1["customer_id"], b1["customer_id"]
    before_a, before_b = await identity(client, auth, a), await identity(client, auth, b)

    merged = await client.post(
        f"/v1/customers/{a}/merge", json={"customer_id": b, "reason": "caller confirmed both, ticket 7"}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    merge = merged.json()["merge"]
    assert (merge["rule"], merge["survivor_id"], merge["merged_id"]) == ("manual", a, b)
    assert merge["actor"].startswith("api-key:") and merge["reason"] == "caller confirmed both, ticket 7"
    assert await customer_of(client, auth, b1["interaction_id"]) == a

    # While merged: more contacts on each side, one with a new identifier that joins through Bob's email.
    a2 = await post(client, auth, event("a-2", "sms", ident("phone", PHONE)))
    b2 = await post(
        client, auth, event("b-2", "email", ident("email", "bob@example.com"), ident("email", "bob@work.example"))
    )
    assert a2["customer_id"] == b2["customer_id"] == a

    undone = await client.post(f"/v1/merges/{merge['id']}/undo", json={"reason": "wrong person"}, headers=admin)
    assert undone.status_code == 200, undone.text
    assert undone.json()["merge"]["undone_at"] is not None
    after_a, after_b = await identity(client, auth, a), await identity(client, auth, b)
    assert after_a["identifiers"] == [
        {**i, "last_seen": after_a["identifiers"][0]["last_seen"]} for i in before_a["identifiers"]
    ]
    assert [i["value"] for i in after_b["identifiers"]] == ["bob@example.com", "bob@work.example"]
    assert after_b["identifiers"][0]["link"] == before_b["identifiers"][0]["link"]
    assert after_a["merged_customer_ids"] == after_b["merged_customer_ids"] == []
    for interaction, owner in ((a1, a), (a2, a), (b1, b), (b2, b)):
        assert await customer_of(client, auth, interaction["interaction_id"]) == owner
    # The history keeps the merge and its undo.
    [history] = after_a["merges"]
    assert history["undone_by"].startswith("api-key:") and history["undo_reason"] == "wrong person"
    again = await client.post(f"/v1/merges/{merge['id']}/undo", json={"reason": "twice"}, headers=admin)
    assert again.status_code == 409


async def test_undo_takes_back_the_display_name_the_merge_gave(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    async def name_of(customer: str) -> str | None:
        response = await client.get(f"/v1/customers/{customer}", headers=auth)
        assert response.status_code == 200, response.text
        return response.json()["display_name"]

    async def merge_and_undo(survivor: str, merged: str) -> tuple[str | None, str | None]:
        response = await client.post(
            f"/v1/customers/{survivor}/merge", json={"customer_id": merged, "reason": "same person"}, headers=admin
        )
        assert response.status_code == 200, response.text
        merge = response.json()["merge"]["id"]
        while_merged = await name_of(survivor)
        undone = await client.post(f"/v1/merges/{merge}/undo", json={"reason": "wrong person"}, headers=admin)
        assert undone.status_code == 200, undone.text
        return while_merged, await name_of(survivor)

    # A nameless caller merged with Bob carries Bob's name while merged, and none again after the undo.
    caller = (await post(client, auth, event("a-1", "voice", ident("phone", PHONE))))["customer_id"]
    bob = (await post(client, auth, event("b-1", "email", ident("email", "bob@example.com"), name="Bob")))[
        "customer_id"
    ]
    assert await merge_and_undo(caller, bob) == ("Bob", None)
    assert await name_of(bob) == "Bob"
    # A survivor with a name of its own keeps it throughout.
    ann = (await post(client, auth, event("c-1", "voice", ident("phone", "+14155550177"), name="Ann")))["customer_id"]
    assert await merge_and_undo(ann, bob) == ("Ann", "Ann")

    # Passed on: the nameless caller absorbs Bob, then another nameless customer absorbs the caller. Undoing the first
    # merge takes Bob's name back from both; nobody left in the group has one.
    async def merge(survivor: str, merged: str) -> str:
        response = await client.post(
            f"/v1/customers/{survivor}/merge", json={"customer_id": merged, "reason": "same person"}, headers=admin
        )
        assert response.status_code == 200, response.text
        return response.json()["merge"]["id"]

    other = (await post(client, auth, event("d-1", "chat", ident("chat", "web:d1"))))["customer_id"]
    first = await merge(caller, bob)
    await merge(other, caller)
    assert (await name_of(caller), await name_of(other)) == ("Bob", "Bob")
    undone = await client.post(f"/v1/merges/{first}/undo", json={"reason": "wrong person"}, headers=admin)
    assert undone.status_code == 200, undone.text
    assert (await name_of(caller), await name_of(other), await name_of(bob)) == (None, None, "Bob")


async def test_formatting_variants_of_one_number_are_one_identifier(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    variants = ["+1 415-555-0100", "(415) 555 0100", "tel:+14155550100", "whatsapp:+14155550100"]
    customers = {
        (await post(client, auth, event(f"v-{n}", "sms", ident("phone", v))))["customer_id"]
        for n, v in enumerate(variants)
    }
    assert len(customers) == 1
    assert await db.fetch("select kind, value from identifier") == [("phone", PHONE)]
    [customer] = customers
    for variant in variants:
        found = (await client.get("/v1/identity/lookup", params={"phone": variant}, headers=auth)).json()
        assert (found["status"], found["value"], found["customer_id"]) == ("found", PHONE, customer)


async def test_detach_moves_an_identifier_and_its_interactions_out(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    first = await post(client, auth, event("d-1", "voice", ident("phone", PHONE), ident("email", EMAIL)))
    explained = await identity(client, auth, first["customer_id"])
    email_id = next(i["id"] for i in explained["identifiers"] if i["kind"] == "email")
    mail = await post(client, auth, event("d-2", "email", ident("email", EMAIL)))
    assert mail["customer_id"] == first["customer_id"]

    detached = await client.post(
        f"/v1/identifiers/{email_id}/detach", json={"reason": "shared family inbox"}, headers=admin
    )
    assert detached.status_code == 200, detached.text
    moved = detached.json()
    assert moved["from_customer_id"] == first["customer_id"] != moved["customer_id"]
    assert await customer_of(client, auth, mail["interaction_id"]) == moved["customer_id"]
    assert await customer_of(client, auth, first["interaction_id"]) == first["customer_id"]  # phone outranks: same
    link = (await identity(client, auth, moved["customer_id"]))["identifiers"][0]["link"]
    assert link["rule"] == "detached" and link["actor"].startswith("api-key:")
    missing = await client.post("/v1/identifiers/999999/detach", json={"reason": "typo here"}, headers=admin)
    assert missing.status_code == 404


async def test_an_interaction_belongs_to_its_strongest_unshared_identifier_as_the_evidence_changes(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    """Each interaction's customer is kept with it (migration 0014), so every change of evidence that can change
    what the rule says must reach the interactions it concerns: a link's verification raised, an identifier
    detached, an identifier that became shared."""
    # Verification raised: weak evidence naming two customers stays with the earliest linked identifier until a
    # later delivery of the same interaction authenticates the other one.
    ann = await post(client, auth, event("o-1", "voice", ident("phone", PHONE), name="Ann"))
    bob = await post(client, auth, event("o-2", "email", ident("email", "bob@example.com", "signed"), name="Bob"))
    both = event("o-3", "voice", ident("phone", PHONE), ident("email", "bob@example.com"))
    weak = await post(client, auth, both)
    assert weak["customer_id"] == ann["customer_id"] != bob["customer_id"]
    strong = event(
        "o-3", "voice", ident("phone", PHONE), ident("email", "bob@example.com", "authenticated"), revision=1
    )
    await post(client, auth, strong)
    assert await customer_of(client, auth, weak["interaction_id"]) == bob["customer_id"]
    assert (await identity(client, auth, ann["customer_id"]))["merges"] == []

    # Detached: an interaction owned by the detached identifier that also carries one the customer keeps stays.
    carol = await post(client, auth, event("o-4", "email", ident("email", "carol@example.com")))
    later = await post(
        client, auth, event("o-5", "sms", ident("email", "carol@example.com"), ident("phone", "+14155550111"))
    )
    assert later["customer_id"] == carol["customer_id"]
    explained = await identity(client, auth, carol["customer_id"])
    email_id = next(i["id"] for i in explained["identifiers"] if i["kind"] == "email")
    detached = await client.post(f"/v1/identifiers/{email_id}/detach", json={"reason": "family inbox"}, headers=admin)
    assert detached.status_code == 200, detached.text
    assert await customer_of(client, auth, carol["interaction_id"]) == detached.json()["customer_id"]
    assert await customer_of(client, auth, later["interaction_id"]) == carol["customer_id"]

    # Shared: a call that had nothing but the switchboard belonged to its first caller until the number turned
    # out to be shared; then it belongs to nobody.
    switchboard = "+1 212 555 0000"
    plain = await post(client, auth, event("o-6", "voice", ident("phone", switchboard, "carrier_attested")))
    assert plain["customer_id"] is not None
    for n in range(5):
        await call_from_switchboard(client, auth, switchboard, n, "o-sw")
    lookup = (await client.get("/v1/identity/lookup", params={"phone": switchboard}, headers=auth)).json()
    assert lookup["status"] == "ambiguous"
    assert await customer_of(client, auth, plain["interaction_id"]) is None


async def test_a_detach_racing_an_ingest_that_links_the_same_interaction_leaves_the_right_owner(
    client: AsyncTestClient, auth: dict[str, str], pool: asyncpg.Pool, database_url: str
) -> None:
    """An ingest is adding Bob's phone to Ann's call (not committed yet) while Ann's email, which owns the call, is
    detached. The detach must wait for the ingest and then rank the phone too: afterwards the phone, linked earlier
    than the detached email, owns the call."""
    call = await post(client, auth, event("r-1", "voice", ident("email", "ann@example.com")))
    bob = await post(client, auth, event("r-2", "sms", ident("phone", PHONE)))
    email_id = (await identity(client, auth, call["customer_id"]))["identifiers"][0]["id"]
    ingest = await asyncpg.connect(database_url)
    try:
        async with ingest.transaction():
            # What ingest does: write the interaction (locking it), then link the event's identifiers.
            await ingest.execute("select 1 from interaction where id = $1 for update", call["interaction_id"])
            await ingest.execute(
                "insert into interaction_identifier (interaction_id, identifier_id, verification) "
                "select $1, id, 'unverified' from identifier where kind = 'phone' and value = $2",
                call["interaction_id"],
                PHONE,
            )
            # (the test client answers one request at a time: the detach runs on a pool of its own)
            detaching = asyncio.ensure_future(
                detach_identifier(pool, email_id, actor="test", reason="family inbox", to_customer_id=None, limits={})
            )
            await asyncio.sleep(0.5)
            assert not detaching.done()  # waiting for the ingest
        detached = await asyncio.wait_for(detaching, 10)
    finally:
        await ingest.close()
    assert str(detached.from_customer_id) == call["customer_id"]
    assert await customer_of(client, auth, call["interaction_id"]) == bob["customer_id"]


async def test_suggestions_accept_merges_and_reject_keeps_apart(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    a = await post(client, auth, event("s-a", "voice", ident("phone", PHONE)))
    b = await post(client, auth, event("s-b", "email", ident("email", EMAIL)))
    c = await post(client, auth, event("s-c", "email", ident("email", "carl@example.com")))
    await post(client, auth, event("s-ab", "voice", ident("phone", PHONE), ident("email", EMAIL)))
    await post(client, auth, event("s-ac", "voice", ident("phone", PHONE), ident("email", "carl@example.com")))
    open_ = await suggestions(client, auth)
    assert len(open_) == 2
    ab = next(s for s in open_ if b["customer_id"] in (s["customer_a"], s["customer_b"]))
    ac = next(s for s in open_ if c["customer_id"] in (s["customer_a"], s["customer_b"]))

    forbidden = await client.post(f"/v1/identity/suggestions/{ab['id']}/accept", json={"reason": "same"}, headers=auth)
    assert forbidden.status_code == 403
    accepted = await client.post(
        f"/v1/identity/suggestions/{ab['id']}/accept", json={"reason": "confirmed by phone"}, headers=admin
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted" and accepted.json()["merge_id"]
    assert await customer_of(client, auth, b["interaction_id"]) == a["customer_id"]
    rejected = await client.post(
        f"/v1/identity/suggestions/{ac['id']}/reject", json={"reason": "different people"}, headers=admin
    )
    assert rejected.json()["status"] == "rejected"
    assert await customer_of(client, auth, c["interaction_id"]) == c["customer_id"]
    assert await suggestions(client, auth) == []
    twice = await client.post(f"/v1/identity/suggestions/{ac['id']}/accept", json={"reason": "oops"}, headers=admin)
    assert twice.status_code == 409


async def test_a_persons_decision_keeps_two_customers_apart_until_a_person_changes_it(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    phone, email = ident("phone", PHONE, "authenticated"), ident("email", EMAIL, "authenticated")
    first_a = await post(client, auth, event("k-a", "voice", phone))
    first_b = await post(client, auth, event("k-b", "email", email))
    a, b = first_a["customer_id"], first_b["customer_id"]
    both = await post(client, auth, event("k-ab", "chat", phone, email))  # both authenticated: merged
    assert both["customer_id"] == a
    merge = (await identity(client, auth, a))["merges"][0]
    assert merge["rule"] == "strong-evidence"
    undone = await client.post(f"/v1/merges/{merge['id']}/undo", json={"reason": "two people"}, headers=admin)
    assert undone.status_code == 200, undone.text

    # The same strong evidence again: no merge; a conflicting suggestion naming the undo, for a person to look at.
    await post(client, auth, event("k-ab-2", "chat", phone, email))
    assert await customer_of(client, auth, first_a["interaction_id"]) == a
    assert await customer_of(client, auth, first_b["interaction_id"]) == b
    [held] = await suggestions(client, auth)
    assert held["status"] == "conflict" and "undid their merge" in held["conflict"] and "two people" in held["conflict"]

    # A person may change their mind: accepting it merges them.
    accepted = await client.post(
        f"/v1/identity/suggestions/{held['id']}/accept", json={"reason": "same after all"}, headers=admin
    )
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text

    # A rejected suggestion stays decided: the next weak event naming both raises it as a conflict, not as new.
    c = (await post(client, auth, event("k-c", "email", ident("email", "carl@example.com"))))["customer_id"]
    await post(client, auth, event("k-ac", "voice", ident("phone", "+14155550199"), ident("email", "carl@example.com")))
    d_call = await post(client, auth, event("k-d", "voice", ident("phone", "+14155550188")))
    await post(client, auth, event("k-cd", "voice", ident("phone", "+14155550188"), ident("email", "carl@example.com")))
    [open_] = await suggestions(client, auth)
    assert open_["status"] == "pending" and {open_["customer_a"], open_["customer_b"]} == {c, d_call["customer_id"]}
    rejected = await client.post(
        f"/v1/identity/suggestions/{open_['id']}/reject", json={"reason": "different people"}, headers=admin
    )
    assert rejected.status_code == 200, rejected.text
    await post(
        client, auth, event("k-cd-2", "voice", ident("phone", "+14155550188"), ident("email", "carl@example.com"))
    )
    [raised] = await suggestions(client, auth)
    assert raised["status"] == "conflict" and "rejected merging them" in raised["conflict"]
    # a manual merge still goes ahead
    manual = await client.post(
        f"/v1/customers/{c}/merge", json={"customer_id": d_call["customer_id"], "reason": "checked"}, headers=admin
    )
    assert manual.status_code == 200, manual.text


async def test_lookup_needs_exactly_one_identifier(client: AsyncTestClient, auth: dict[str, str]) -> None:
    none = await client.get("/v1/identity/lookup", headers=auth)
    two = await client.get("/v1/identity/lookup", params={"phone": PHONE, "email": EMAIL}, headers=auth)
    assert none.status_code == two.status_code == 400
    unknown = (await client.get("/v1/identity/lookup", params={"email": "New@Example.com"}, headers=auth)).json()
    assert (unknown["status"], unknown["value"]) == ("unknown", "new@example.com")
    for kind in ("chat", "account", "external"):  # a NUL names no one (and is no server error)
        nul = await client.get("/v1/identity/lookup", params={kind: "a\x00b"}, headers=auth)
        assert nul.status_code == 200 and nul.json()["status"] == "unknown", nul.text


async def test_concurrent_first_contacts_and_a_merge_racing_ingest_lose_nothing(
    database_url: str, db: asyncpg.Connection
) -> None:
    # The test client serialises requests: drive ingest on a real pool, many connections at the same moment.
    def ev(n: int, *identifiers: dict[str, str]) -> InteractionEvent:
        return msgspec.convert(event(f"race-{n}", "chat", *identifiers), InteractionEvent)

    pool = await open_pool(database_url, min_size=10, max_size=10)
    raw = RawDelivery("native", "application/json", [], b"{}", 2)
    try:
        firsts = await asyncio.gather(
            *(ingest_events(pool, raw, [ev(n, ident("email", EMAIL))], options=IngestOptions()) for n in range(10))
        )
        assert len({r.results[0].customer_id for r in firsts}) == 1
        other = await ingest_events(pool, raw, [ev(100, ident("phone", PHONE))], options=IngestOptions())
        a, b = firsts[0].results[0].customer_id, other.results[0].customer_id
        # Strong events that merge a and b, racing plain events on both sides and newcomers joining each side.
        racing = [
            ingest_events(
                pool,
                raw,
                [ev(200 + n, ident("email", EMAIL, "authenticated"), ident("phone", PHONE, "authenticated"))],
                options=IngestOptions(),
            )
            for n in range(4)
        ]
        racing += [
            ingest_events(
                pool, raw, [ev(300 + n, ident("email", EMAIL), ident("chat", f"web:{n}"))], options=IngestOptions()
            )
            for n in range(6)
        ]
        racing += [
            ingest_events(pool, raw, [ev(400 + n, ident("phone", PHONE))], options=IngestOptions()) for n in range(6)
        ]
        await asyncio.gather(*racing)
    finally:
        await pool.close()
    assert await db.fetchval("select count(*) from interaction") == 10 + 1 + 4 + 6 + 6
    assert await db.fetchval("select count(*) from customer_merge where undone_at is null") == 1
    roots = await db.fetch("select distinct interaction_customer(id) as c from interaction")
    assert [r["c"] for r in roots] == [min(a, b)]
    assert await db.fetchval("select count(*) from identifier where customer_id is null") == 0


async def test_erasure_after_a_merge_covers_every_identifier_and_an_erased_number_starts_afresh(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str], db: asyncpg.Connection
) -> None:
    a = await post(client, auth, event("e-a", "voice", ident("phone", PHONE)))
    b = await post(client, auth, event("e-b", "email", ident("email", EMAIL)))
    await post(client, auth, event("e-x", "voice", ident("phone", PHONE), ident("email", "x@example.org")))
    merged = await client.post(
        f"/v1/customers/{a['customer_id']}/merge",
        json={"customer_id": b["customer_id"], "reason": "verified on the phone"},
        headers=admin,
    )
    assert merged.status_code == 200
    exported = (await client.get(f"/v1/customers/{b['customer_id']}/export", headers=admin)).json()
    assert {i["value"] for i in exported["identifiers"]} == {PHONE, EMAIL, "x@example.org"}
    assert [m["rule"] for m in exported["merges"]] == ["manual"]

    erased = await client.request(
        "DELETE", f"/v1/customers/{b['customer_id']}", json={"reason": "GDPR art. 17, ticket 9"}, headers=admin
    )
    assert erased.status_code == 200, erased.text
    counts = erased.json()["counts"]
    assert (counts["identifiers"], counts["interactions"], counts["merges"]) == (3, 3, 1)
    for table in ("customer", "identifier", "interaction", "customer_merge", "merge_suggestion", "identifier_usage"):
        assert await db.fetchval(f"select count(*) from {table}") == 0, table
    again = await post(client, auth, event("e-new", "voice", ident("phone", PHONE)))
    assert again["customer_id"] not in (a["customer_id"], b["customer_id"])


async def test_fuzzy_scan_over_http_suggests_and_never_merges(
    client: AsyncTestClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    a = await post(client, auth, event("f-a", "email", ident("email", "jane.doe@example.com"), name="Jane Doe"))
    b = await post(client, auth, event("f-b", "chat", ident("chat", "web:jd"), name="JANE  DOE"))
    forbidden = await client.post("/v1/identity/suggestions/scan", headers=auth)
    assert forbidden.status_code == 403
    scanned = await client.post("/v1/identity/suggestions/scan", headers=admin)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["suggestions_created"] == 1
    [fuzzy] = await suggestions(client, auth, kind="fuzzy")
    assert {fuzzy["customer_a"], fuzzy["customer_b"]} == {a["customer_id"], b["customer_id"]}
    assert fuzzy["score"] >= 0.85 and fuzzy["reasons"]
    assert await customer_of(client, auth, b["interaction_id"]) == b["customer_id"]
    bad = await client.post("/v1/identity/suggestions/scan", params={"min_score": "2"}, headers=admin)
    assert bad.status_code == 400


async def test_one_first_event_naming_several_new_identifiers_makes_one_customer(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    strong = await post(
        client,
        auth,
        event(
            "n-1",
            "chat",
            ident("account", "ACC-9", "authenticated"),
            ident("email", EMAIL, "authenticated"),
            ident("phone", PHONE, "authenticated"),
        ),
    )
    mixed = await post(
        client,
        auth,
        event("n-2", "chat", ident("chat", "web:v1"), ident("email", "mixed@example.com", "authenticated")),
    )
    assert await db.fetchval("select count(*) from customer") == 2
    assert await db.fetchval("select count(*) from customer_merge") == 0
    assert await db.fetchval("select count(*) from merge_suggestion") == 0
    for created, values in ((strong, {"ACC-9", EMAIL, PHONE}), (mixed, {"web:v1", "mixed@example.com"})):
        explained = await identity(client, auth, created["customer_id"])
        assert {i["value"] for i in explained["identifiers"]} == values
        assert {i["link"]["rule"] for i in explained["identifiers"]} == {"first-contact"}
