"""Twilio Messaging connector: signature, incoming SMS/MMS/WhatsApp, status callbacks, and every rejection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors._twilio import twilio_signature
from connectors.registry import get_connector
from connectors.sms.twilio_sms import connector
from schemas import Attachment, Endpoint, Identifier, InteractionEvent, SmsDetails

FIXTURES = Path(__file__).parent.parent / "fixtures" / "twilio-sms"
URL = "https://unify.example.com/v1/webhooks/twilio-sms"
TOKEN = "9f2c6e1b4a7d8c3e5f0a1b2c3d4e5f60"
NOW = datetime(2024, 3, 15, 14, 24, 5, tzinfo=UTC)
SETTINGS = ConnectorSettings(secret=TOKEN)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def request(
    body: bytes, *, signature: str | None = None, content_type: str = "application/x-www-form-urlencoded"
) -> WebhookRequest:
    if signature is None:
        signature = twilio_signature(TOKEN, URL, parse_qsl(body.decode(), keep_blank_values=True))
    headers = {
        "content-type": content_type,
        "user-agent": "TwilioProxy/1.1",
        "i-twilio-idempotency-token": "5c1d1c5e-96b5-4a3c-8f0e-4a1b2c3d4e5f",
        "x-twilio-signature": signature,
    }
    return WebhookRequest(method="POST", url=URL, headers=headers, body=body, received_at=NOW)


def parse_one(body: bytes) -> InteractionEvent:
    parsed = connector.parse(request(body), SETTINGS)
    assert parsed.fragments == [] and parsed.replay_token is None
    assert len(parsed.events) == 1
    return parsed.events[0]


def with_fields(name: str, **changes: str | None) -> bytes:
    fields = dict(parse_qsl(fixture(name).decode(), keep_blank_values=True))
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return urlencode(fields).encode()


def test_registered_under_its_route_name() -> None:
    assert get_connector("twilio-sms") is connector
    assert connector.name == "twilio-sms" and connector.channel == "sms"
    assert connector.reply.status == 200 and connector.reply.content_type == "text/xml"
    assert connector.reply.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


# --- signature -------------------------------------------------------------------------------------------------


def test_verify_accepts_twilios_signature() -> None:
    connector.verify(request(fixture("incoming-sms.txt")), SETTINGS)


def test_verify_rejects_a_wrong_or_missing_signature_and_a_missing_token() -> None:
    body = fixture("incoming-sms.txt")
    with pytest.raises(SignatureError) as wrong:
        connector.verify(request(body, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8="), SETTINGS)
    assert wrong.value.field == "x-twilio-signature"
    with pytest.raises(SignatureError):
        connector.verify(request(body, signature=""), SETTINGS)
    with pytest.raises(SignatureError, match="auth token"):
        connector.verify(request(body), ConnectorSettings())


def test_verify_rejects_a_tampered_body() -> None:
    good = request(fixture("incoming-sms.txt"))
    tampered = with_fields("incoming-sms.txt", Body="Please close my account")
    with pytest.raises(SignatureError):
        connector.verify(
            request(tampered, signature=good.headers["x-twilio-signature"]),
            SETTINGS,
        )


def test_verify_turns_an_unreadable_form_into_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        connector.verify(request(b"\xff\xfe=1", signature="x"), SETTINGS)


def test_verify_is_skipped_when_turned_off() -> None:
    connector.verify(request(fixture("incoming-sms.txt"), signature="nonsense"), ConnectorSettings(verify=False))


# --- incoming messages -----------------------------------------------------------------------------------------


def test_incoming_sms() -> None:
    event = parse_one(fixture("incoming-sms.txt"))
    assert event.source == "twilio-sms"
    assert event.external_id == "SM3f8a2c1d9b7e4a6f8c0d2e4f6a8b0c1d"
    assert event.channel == "sms" and event.direction == "inbound" and event.status == "received"
    assert event.revision == 0
    assert event.occurred_at == NOW
    assert event.customer.identifiers == [Identifier(kind="phone", value="+14155550123", verification="unverified")]
    assert event.customer.display_name is None
    assert event.endpoint == Endpoint(kind="phone", value="+14155550100")
    assert event.text == "Hi, my order #58213 never arrived. Can someone call me back?"
    assert event.snippet == event.text
    assert event.attachments == []
    assert event.details == SmsDetails(transport="sms", segments=1)
    assert event.attributes == {
        "account_sid": "AC5ef8732a3c49700934481addd5ce1659",
        "messaging_service_sid": "MG9d2c4b6a8e0f1a3c5e7b9d1f3a5c7e9b",
        "from_city": "SAN FRANCISCO",
        "from_state": "CA",
        "from_zip": "94105",
        "from_country": "US",
    }


def test_incoming_mms_lists_its_media() -> None:
    event = parse_one(fixture("incoming-mms.txt"))
    assert event.external_id == "MM8b1e5d3c7a9f2e4d6b8a0c2e4f6d8b0a"
    assert event.details == SmsDetails(transport="mms", segments=1, media_count=2)
    base = (
        "https://api.twilio.com/2010-04-01/Accounts/AC5ef8732a3c49700934481addd5ce1659"
        "/Messages/MM8b1e5d3c7a9f2e4d6b8a0c2e4f6d8b0a/Media/"
    )
    assert event.attachments == [
        Attachment(url=base + "ME1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d", content_type="image/jpeg"),
        Attachment(url=base + "ME6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a", content_type="application/pdf"),
    ]
    assert event.text == "Photo of the damaged box"
    assert event.customer.identifiers[0].value == "+12125550187"


def test_incoming_whatsapp_keeps_the_channel_as_detail() -> None:
    event = parse_one(fixture("incoming-whatsapp.txt"))
    assert event.external_id == "SMa4c6e8f0b2d4f6a8c0e2b4d6f8a0c2e4"
    assert event.details == SmsDetails(transport="whatsapp", segments=1)
    # The raw address is kept; the service strips `whatsapp:` when it normalizes the number.
    assert event.customer.identifiers == [Identifier(kind="phone", value="whatsapp:+34600555012")]
    assert event.customer.display_name == "María García"
    assert event.endpoint == Endpoint(kind="phone", value="+14155238886")
    assert event.text == "Hola, ¿puedo cambiar la dirección de entrega?"
    assert event.attributes["wa_id"] == "34600555012"


def test_older_sid_names_are_accepted() -> None:
    body = with_fields("incoming-sms.txt", MessageSid=None, SmsMessageSid=None)
    assert parse_one(body).external_id == "SM3f8a2c1d9b7e4a6f8c0d2e4f6a8b0c1d"


def test_a_message_without_body_has_no_text() -> None:
    event = parse_one(with_fields("incoming-mms.txt", Body=""))
    assert event.text is None and event.snippet is None


def test_a_long_body_gets_a_short_snippet() -> None:
    event = parse_one(with_fields("incoming-sms.txt", Body="x" * 1600, NumSegments="11"))
    assert len(event.text or "") == 1600 and len(event.snippet or "") == 1000
    assert event.details == SmsDetails(transport="sms", segments=11)


def test_get_webhooks_are_read_from_the_query() -> None:
    params = parse_qsl(fixture("incoming-sms.txt").decode())
    get = WebhookRequest(
        method="GET",
        url=URL + "?" + urlencode(params),
        headers={},
        body=b"",
        received_at=NOW,
        query=params,
    )
    [event] = connector.parse(get, SETTINGS).events
    assert event.external_id == "SM3f8a2c1d9b7e4a6f8c0d2e4f6a8b0c1d"


# --- status callbacks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "revision"),
    [("status-sent.txt", "sent", 4), ("status-delivered.txt", "delivered", 6)],
)
def test_status_callbacks_are_outbound_and_ordered(name: str, status: str, revision: int) -> None:
    event = parse_one(fixture(name))
    assert event.external_id == "SM7c9e1a3b5d7f9b1d3f5a7c9e1b3d5f7a"
    assert event.direction == "outbound" and event.status == status and event.revision == revision
    assert event.customer.identifiers == [Identifier(kind="phone", value="+14155550123")]
    assert event.endpoint == Endpoint(kind="phone", value="+14155550100")
    assert event.text is None
    assert event.attributes["message_status"] == status


def test_status_ranks_follow_a_messages_life() -> None:
    revisions = [
        parse_one(with_fields("status-sent.txt", MessageStatus=s, SmsStatus=s)).revision
        for s in ("accepted", "queued", "sending", "sent", "delivered", "read")
    ]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    failed = parse_one(with_fields("status-sent.txt", MessageStatus="failed", SmsStatus="failed"))
    assert failed.status == "failed" and failed.revision > 4


def test_undelivered_status_keeps_the_error_code() -> None:
    event = parse_one(fixture("status-undelivered.txt"))
    assert event.status == "undelivered" and event.revision == 6
    assert event.attributes["error_code"] == "30003"
    assert event.customer.identifiers[0].value == "+14155550177"


def test_whatsapp_read_receipt() -> None:
    event = parse_one(fixture("status-whatsapp-read.txt"))
    assert event.direction == "outbound" and event.status == "delivered" and event.revision == 7
    assert event.attributes["message_status"] == "read"
    assert event.details == SmsDetails(transport="whatsapp")
    assert event.customer.identifiers == [Identifier(kind="phone", value="whatsapp:+34600555012")]
    assert event.endpoint == Endpoint(kind="phone", value="+14155238886")


def test_a_status_callback_without_from_has_no_endpoint() -> None:
    event = parse_one(with_fields("status-sent.txt", From=None))
    assert event.endpoint is None and event.customer.identifiers[0].value == "+14155550123"


# --- rejections ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"MessageSid": None, "SmsMessageSid": None, "SmsSid": None}, "MessageSid"),
        ({"MessageSid": "SM" + "0" * 600}, "MessageSid"),
        ({"From": None}, "From"),
        ({"From": "  "}, "From"),
        ({"To": None}, "To"),
        ({"To": "+1" * 200}, "To"),
        ({"NumMedia": "two"}, "NumMedia"),
        ({"NumMedia": "-1"}, "NumMedia"),
        ({"NumMedia": "1000"}, "NumMedia"),
        ({"NumMedia": "1"}, "MediaUrl0"),
        ({"NumSegments": "0"}, "NumSegments"),
        ({"NumSegments": "many"}, "NumSegments"),
        ({"SmsStatus": "exploded"}, "SmsStatus"),
        ({"Body": "nul\x00byte"}, "Body"),
    ],
)
def test_bad_incoming_messages_name_the_field(changes: dict[str, str | None], field: str) -> None:
    with pytest.raises(PayloadError) as error:
        connector.parse(request(with_fields("incoming-sms.txt", **changes)), SETTINGS)
    assert error.value.field == field


def test_bad_status_callbacks_name_the_field() -> None:
    with pytest.raises(PayloadError) as error:
        connector.parse(request(with_fields("status-sent.txt", MessageStatus="teleported")), SETTINGS)
    assert error.value.field == "MessageStatus"
    with pytest.raises(PayloadError) as error:
        connector.parse(request(with_fields("status-sent.txt", To=None)), SETTINGS)
    assert error.value.field == "To"


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b'{"MessageSid": "SM1"}', "application/json", "content-type"),
        (b"\xff\xfe", "application/x-www-form-urlencoded", "$"),
        (b"a=1&&&=", "application/x-www-form-urlencoded", "$"),
        (b"", "application/x-www-form-urlencoded", "MessageSid"),
    ],
)
def test_bodies_twilio_never_sends(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(PayloadError) as error:
        connector.parse(request(body, signature="x", content_type=content_type), SETTINGS)
    assert error.value.field == field


def test_never_splits_messages() -> None:
    with pytest.raises(NotImplementedError):
        connector.assemble([])
