"""Card numbers never reach the database in the clear: every place the text lands is masked, counts are kept."""

from __future__ import annotations

import asyncpg
from litestar.testing import AsyncTestClient

from tests.events import native_event
from tests.webhooks.helpers import configure, post_webhook, public_url

CARD_SPELLINGS = ("4242 4242 4242 4242", "4242424242424242", "4111-1111-1111-1111", "4111111111111111", "12/29")


async def _everything_stored(db: asyncpg.Connection) -> str:
    rows = await db.fetch("select event::text as event, subject, reason, disposition from interaction")
    return " ".join(str(v) for r in rows for v in r.values())


async def test_chat_sms_and_email_texts_are_stored_masked(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    chat = native_event(
        "chat-1",
        channel="chat",
        details={"type": "chat"},
        text="Here: 4242 4242 4242 4242 exp 12/29 cvv 123. Order 1234567812345678, call +1 415 555 0100",
        snippet="Here: 4242 4242 4242 4242 exp 12/29 cvv 123",
    )
    sms = native_event("sms-1", channel="sms", details={"type": "sms"}, text="card 4111-1111-1111-1111 thanks")
    email = native_event(
        "mail-1",
        channel="email",
        details={"type": "email"},
        subject="My card 4111 1111 1111 1111 was charged twice",
        text="Statement for card 4111111111111111.\n\nRegards",
        attributes={"note": "pan 4242424242424242"},
    )
    for event in (chat, sms, email):
        assert (await client.post("/v1/interactions", json=event, headers=auth)).status_code == 201

    stored = await _everything_stored(db)
    for spelling in CARD_SPELLINGS:
        assert spelling not in stored
    assert "[card ••••4242]" in stored and "[card ••••1111]" in stored
    # What is not a card stays: a 16-digit order number that fails Luhn, and a phone number.
    assert "1234567812345678" in stored and "+1 415 555 0100" in stored

    counts = {
        r["external_id"]: r["redactions"] for r in await db.fetch("select external_id, redactions from interaction")
    }
    assert counts["chat-1"] == {"card": 2, "expiry": 2, "cvv": 2}  # text and snippet
    assert counts["sms-1"] == {"card": 1}
    assert counts["mail-1"] == {"card": 3}

    read = await client.get(
        f"/v1/interactions/{(await db.fetchval('select id from interaction where external_id = $1', 'chat-1'))}",
        headers=auth,
    )
    assert "4242 4242" not in read.text and "[card ••••4242]" in read.json()["event"]["text"]

    # The agent's context and the customer's timeline show the masked texts (a trusted lookup shows bodies).
    context = await client.get(
        "/v1/context", params={"phone": "+14155550100", "verification": "carrier_attested"}, headers=auth
    )
    assert context.status_code == 200, context.text
    customer = context.json()["customer"]["id"]
    timeline = await client.get(f"/v1/customers/{customer}/timeline", headers=auth)
    for shown in (context.text, timeline.text):
        for spelling in CARD_SPELLINGS:
            assert spelling not in shown
    snippets = {e["channel"]: (e["subject"], e["snippet"]) for e in context.json()["timeline"]}
    assert snippets["chat"][1] == "Here: [card ••••4242] exp [expiry] cvv [cvv]"
    assert snippets["email"][0] == "My card [card ••••1111] was charged twice"
    assert snippets["sms"][1] == "card [card ••••1111] thanks"


async def test_a_webhook_text_is_masked_too(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    from urllib.parse import urlencode

    from connectors._twilio import twilio_signature

    await configure(db, "twilio-sms", secret="tok")
    params = [
        ("MessageSid", "SM" + "c" * 32),
        ("AccountSid", "AC" + "d" * 32),
        ("From", "+14155550100"),
        ("To", "+14155550199"),
        ("Body", "my card is 4111 1111 1111 1111"),
        ("NumMedia", "0"),
    ]
    signature = twilio_signature("tok", public_url("twilio-sms"), params)
    response = await post_webhook(
        client,
        "twilio-sms",
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )
    assert response.status_code == 200
    stored = await _everything_stored(db)
    assert "4111 1111 1111 1111" not in stored and "[card ••••1111]" in stored
