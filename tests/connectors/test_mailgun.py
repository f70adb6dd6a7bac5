"""Mailgun inbound routes: the documented signature vector, stale and forged signatures, the urlencoded,
multipart, raw-MIME and store/notify variants, and every rejection naming its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import msgspec
import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.email.mailgun import connector, mailgun_signature
from connectors.registry import get_connector
from schemas import Attachment, CustomerParty, EmailDetails, Endpoint, Identifier, InteractionEvent

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mailgun"
URL = "https://unify.example.com/v1/webhooks/mailgun"
FORM = "application/x-www-form-urlencoded"
MULTIPART = (FIXTURES / "forward-multipart.content-type").read_text().strip()
# Mailgun's documented example: signing key, timestamp, token → signature. The fixtures carry these values.
KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
TIMESTAMP = "1403645220"
TOKEN = "5egbgr1vjgqxtrnp65xfznchgdccwh5d6i09vijqi3whgowmn6"
SIGNATURE = "9cfc5c41582e51246e73c88d34db3af0a3a2692a76fbab81492842f000256d33"
SIGNED_AT = datetime.fromtimestamp(int(TIMESTAMP), UTC)
SETTINGS = ConnectorSettings(secret=KEY)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def request(
    body: bytes, content_type: str = FORM, *, at: datetime = SIGNED_AT + timedelta(seconds=3)
) -> WebhookRequest:
    headers = {"content-type": content_type, "user-agent": "mailgun/treq-16.12.0"}
    return WebhookRequest(method="POST", url=URL, headers=headers, body=body, received_at=at)


def form(name: str, **changes: str | None) -> bytes:
    fields = dict(parse_qsl(fixture(name).decode(), keep_blank_values=True))
    return urlencode({k: v for k, v in (fields | changes).items() if v is not None}).encode()


def parse_one(body: bytes, content_type: str = FORM) -> InteractionEvent:
    parsed = connector.parse(request(body, content_type), SETTINGS)
    assert parsed.replay_token == TOKEN
    [event] = parsed.events
    assert msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent) == event
    return event


def test_registered() -> None:
    assert get_connector("mailgun") is connector


def test_documented_signature_vector() -> None:
    assert mailgun_signature(KEY, TIMESTAMP, TOKEN) == SIGNATURE


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("forward-urlencoded.txt", FORM),
        ("forward-multipart.txt", MULTIPART),
        ("forward-mime.txt", FORM),
        ("store-notify.txt", FORM),
    ],
)
def test_every_variant_verifies(name: str, content_type: str) -> None:
    connector.verify(request(fixture(name), content_type), SETTINGS)


def test_wrong_signature_or_key() -> None:
    forged = form("forward-urlencoded.txt", signature="0" * 64)
    with pytest.raises(SignatureError) as wrong:
        connector.verify(request(forged), SETTINGS)
    assert wrong.value.field == "signature"
    with pytest.raises(SignatureError):
        connector.verify(request(fixture("forward-urlencoded.txt")), ConnectorSettings(secret="key-other"))
    with pytest.raises(SignatureError, match="signing key"):
        connector.verify(request(fixture("forward-urlencoded.txt")), ConnectorSettings())
    tampered = form("forward-urlencoded.txt", token=TOKEN[:-1] + "7")
    with pytest.raises(SignatureError):
        connector.verify(request(tampered), SETTINGS)


@pytest.mark.parametrize("missing", ["timestamp", "token", "signature"])
def test_missing_signature_field(missing: str) -> None:
    fields = dict(parse_qsl(fixture("forward-urlencoded.txt").decode()))
    del fields[missing]
    with pytest.raises(SignatureError) as rejected:
        connector.verify(request(urlencode(fields).encode()), SETTINGS)
    assert rejected.value.field == missing


def test_stale_or_future_timestamp_is_refused() -> None:
    body = fixture("forward-urlencoded.txt")
    for skew in (timedelta(seconds=301), timedelta(seconds=-301), timedelta(days=3650)):
        with pytest.raises(SignatureError) as stale:
            connector.verify(request(body, at=SIGNED_AT + skew), SETTINGS)
        assert stale.value.field == "timestamp"
    connector.verify(request(body, at=SIGNED_AT + timedelta(seconds=299)), SETTINGS)
    lenient = ConnectorSettings(secret=KEY, max_skew_seconds=3600)
    connector.verify(request(body, at=SIGNED_AT + timedelta(seconds=3000)), lenient)


def test_unreadable_body_fails_verification_not_the_server() -> None:
    for body, content_type in ((b"%%%", FORM), (b"garbage", MULTIPART), (b"{}", "application/json")):
        with pytest.raises(SignatureError):
            connector.verify(request(body, content_type), SETTINGS)
    bad_timestamp = {"timestamp": "yesterday", "token": TOKEN}
    signed = urlencode(bad_timestamp | {"signature": mailgun_signature(KEY, "yesterday", TOKEN)}).encode()
    with pytest.raises(SignatureError) as rejected:
        connector.verify(request(signed), SETTINGS)
    assert rejected.value.field == "timestamp"


def test_parsed_forward_is_normalized() -> None:
    event = parse_one(fixture("forward-urlencoded.txt"))
    assert event == InteractionEvent(
        source="mailgun",
        external_id="CAGq1mA7Yt9pXh=reply-7781@mail.gmail.com",
        channel="email",
        direction="inbound",
        occurred_at=datetime(2014, 6, 24, 21, 26, 52, tzinfo=UTC),
        status="received",
        customer=CustomerParty(
            identifiers=[Identifier(kind="email", value="jordan.lee@example.com", verification="signed")],
            display_name="Jordan Lee",
        ),
        endpoint=Endpoint(kind="email", value="support@mg.acme.test"),
        thread_key="CAGq1mA5kq0WnqQ+order-7781@mail.gmail.com",
        subject="Re: Delivery window for order 7781",
        text=event.text,
        snippet="Tuesday after 3pm works best, thanks!\n\nJordan",  # Mailgun's stripped-text
        details=EmailDetails(
            message_id="CAGq1mA7Yt9pXh=reply-7781@mail.gmail.com",
            in_reply_to="20140624180211.11877.58001@mg.acme.test",
            references=["CAGq1mA5kq0WnqQ+order-7781@mail.gmail.com", "20140624180211.11877.58001@mg.acme.test"],
            cc=["sam.lee@example.com"],
            spf="pass",
            dkim="pass",
        ),
    )
    assert event.text is not None and event.text.startswith("Tuesday after 3pm") and "> Which delivery" in event.text


def test_multipart_with_attachments() -> None:
    event = parse_one(fixture("forward-multipart.txt"), MULTIPART)
    assert event.subject == "Invoice for order 7781 – wrong VAT"
    assert event.attachments == [
        Attachment(filename="invoice-7781.pdf", content_type="application/pdf", size_bytes=78),
        Attachment(filename="image001.png", content_type="image/png", size_bytes=70),
    ]
    assert event.customer.identifiers[0].verification == "signed"


def test_raw_mime_variant_keeps_the_original_bytes() -> None:
    event = parse_one(fixture("forward-mime.txt"))
    assert (event.external_id, event.subject) == ("53A9F0A2.4030607@example.fr", "Problème de livraison")
    assert event.text == "Bonjour, le colis n'est pas arrivé. Merci de vérifier.\n\nFrançois"  # 8-bit ISO-8859-1
    assert event.customer == CustomerParty(
        identifiers=[Identifier(kind="email", value="francois.lefevre@example.fr")], display_name="François Lefèvre"
    )
    assert isinstance(event.details, EmailDetails)
    assert (event.details.spf, event.details.dkim) == ("neutral", "fail")


def test_store_and_notify_variant() -> None:
    event = parse_one(fixture("store-notify.txt"))
    assert event.attachments == [
        Attachment(
            filename="IMG_2041.jpg",
            content_type="image/jpeg",
            size_bytes=482113,
            url="https://storage.mailgun.net/v3/domains/mg.acme.test/messages/AgEFpB3sV0f1g2h3/attachments/0",
        )
    ]
    assert event.attributes == {
        "message_url": "https://storage.mailgun.net/v3/domains/mg.acme.test/messages/AgEFpB3sV0f1g2h3"
    }


def test_spf_pass_for_another_domain_does_not_sign_the_from_address() -> None:
    headers = [["X-Mailgun-Spf", "Pass"], ["Message-Id", "<x@example.com>"]]
    body = form(
        "store-notify.txt",
        sender="bounce@esp.example",
        **{"message-headers": json.dumps(headers), "from": "Jordan Lee <jordan.lee@example.com>"},
    )
    event = parse_one(body)
    assert event.customer.identifiers[0].verification == "unverified"


def test_bounce_and_null_sender() -> None:
    headers = [
        ["Message-Id", "<bounce-1@mxa.mailgun.org>"],
        ["Content-Type", "multipart/report; report-type=delivery-status; boundary=x"],
    ]
    bounce = parse_one(
        form(
            "store-notify.txt",
            sender="",
            **{"from": "MAILER-DAEMON@mxa.mailgun.org", "message-headers": json.dumps(headers)},
        )
    )
    assert (bounce.status, bounce.customer) == ("bounced", CustomerParty())
    auto = parse_one(form("store-notify.txt", sender=""))  # MAIL FROM:<> is an automatic message
    assert isinstance(auto.details, EmailDetails) and auto.details.auto_submitted and not auto.details.bounce
    assert auto.customer.identifiers == []


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (form("forward-urlencoded.txt", recipient=""), FORM, "recipient"),
        (form("forward-urlencoded.txt", **{"message-headers": "{not json"}), FORM, "message-headers"),
        (form("forward-urlencoded.txt", **{"message-headers": '{"From": "a@b.c"}'}), FORM, "message-headers"),
        (form("store-notify.txt", attachments='[{"size": "big"}]'), FORM, "attachments"),
        (form("store-notify.txt", **{"from": "", "message-headers": "[]"}), FORM, "from"),
        (b"a=1&&b", FORM, "$"),
        (b'{"recipient": "x"}', "application/json", "content-type"),
        (b"--nope\r\n\r\n", MULTIPART, "$"),
    ],
)
def test_rejections_name_the_field(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(PayloadError) as rejected:
        connector.parse(request(body, content_type), SETTINGS)
    assert rejected.value.field == field


def test_missing_message_id_gets_a_stable_content_key() -> None:
    body = form("forward-urlencoded.txt", **{"Message-Id": None, "message-headers": "[]"})
    first, again = parse_one(body), parse_one(body)
    assert first.external_id.startswith("sha256:") and first.external_id == again.external_id
    assert first.thread_key == "CAGq1mA5kq0WnqQ+order-7781@mail.gmail.com"  # from the References field
