"""amazon-connect: contact trace records, one or a list, normalized field by field."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.phone.amazon_connect import connector
from schemas import CustomerParty, Identifier, InteractionEvent, VoiceDetails
from schemas._interaction import ChatDetails, EmailDetails, Endpoint

FIXTURES = Path(__file__).parents[1] / "fixtures" / "amazon-connect"
URL = "https://unify.example.com/v1/webhooks/amazon-connect"
SETTINGS = ConnectorSettings(basic_auth="connect:s3cret-pass")


def _record(name: str = "inbound-voice.json") -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def _request(body: bytes, authorization: str | None = None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    return WebhookRequest("POST", URL, headers, body, datetime(2026, 11, 3, 18, tzinfo=UTC))


def _events(body: bytes) -> list[InteractionEvent]:
    return connector.parse(_request(body), SETTINGS).events


def _one(record: dict[str, Any]) -> InteractionEvent:
    [event] = _events(json.dumps(record).encode())
    return event


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_inbound_voice_contact() -> None:
    [event] = _events((FIXTURES / "inbound-voice.json").read_bytes())
    assert (event.source, event.external_id) == ("amazon-connect", "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47")
    assert (event.channel, event.direction, event.status) == ("voice", "inbound", "completed")
    assert event.revision == int(datetime(2026, 11, 3, 17, 48, 35, tzinfo=UTC).timestamp() * 1000)
    assert event.occurred_at == datetime(2026, 11, 3, 17, 12, 59, tzinfo=UTC)
    assert event.answered_at == datetime(2026, 11, 3, 17, 20, 32, tzinfo=UTC)
    assert event.ended_at == datetime(2026, 11, 3, 17, 43, 28, tzinfo=UTC)
    assert event.customer == CustomerParty(identifiers=[Identifier(kind="phone", value="+14155550123")])
    assert event.endpoint == Endpoint(kind="phone", value="+18005550100")
    assert (event.agent, event.queue, event.thread_key) == ("jane.agent", "Billing", event.external_id)
    assert (event.queue_wait_seconds, event.hold_seconds, event.talk_seconds) == (346, 221, 1375)
    assert event.transfer_count == 0
    assert event.attributes == {
        "accountNumber": "100-2043-77",
        "intent": "billing",
        "wrapUp": "billing-resolved",
        "greetingPlayed": "true",
    }
    assert event.details == VoiceDetails(
        number_of_holds=2,
        initiation_method="INBOUND",
        disconnect_reason="CUSTOMER_DISCONNECT",
        recording_url="s3://amazon-connect-b278e465e71c/connect/example-corp/CallRecordings/2026/11/03/"
        "6fe40d2a-1a89-4d73-bfcf-5d9c33894f47_20261103T17:20_UTC.wav",
    )


def test_older_copy_has_a_lower_revision() -> None:
    newer, older = _one(_record()), _one(_record("inbound-voice-older.json"))
    assert newer.external_id == older.external_id
    assert older.revision < newer.revision
    assert older.attributes["wrapUp"] == "pending"


def test_a_list_of_records() -> None:
    events = _events((FIXTURES / "batch.json").read_bytes())
    summary = [(e.external_id[:8], e.channel, e.direction, e.status) for e in events]
    assert summary == [
        ("0b9f1c0e", "voice", "inbound", "abandoned"),
        ("9a3e2b7c", "voice", "outbound", "no_answer"),
        ("c4f2a8e1", "chat", "inbound", "completed"),
        # the TASK record is no customer contact: skipped
        ("5d4c3b2a", "email", "inbound", "completed"),
        ("7e6d5c4b", "voice", "inbound", "completed"),
    ]
    abandoned, outbound, chat, email, transferred = events
    assert (abandoned.answered_at, abandoned.agent, abandoned.queue_wait_seconds) == (None, None, 201)
    assert outbound.customer.identifiers == [Identifier(kind="phone", value="+14155550199")]
    assert outbound.answered_at is None  # the customer never picked up
    assert chat.customer == CustomerParty()
    assert chat.details == ChatDetails(platform="amazon-connect", conversation_id=chat.external_id)
    assert chat.attributes == {"customerName": "Jane Roe"}
    assert email.customer.identifiers == [Identifier(kind="email", value="Jane.Roe@Example.com")]
    assert email.endpoint == Endpoint(kind="email", value="support@example-corp.com")
    assert (email.subject, email.details) == ("Invoice 1042 is wrong", EmailDetails())
    assert transferred.transfer_count == 1
    assert transferred.details.next_contact_id == "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # type: ignore[union-attr]


def _changed(**changes: Any) -> dict[str, Any]:
    record = _record()
    for key, value in changes.items():
        path = key.split("__")
        target = record
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    return record


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"DisconnectTimestamp": None}, "in_progress"),  # talking to the agent
        ({"DisconnectTimestamp": None, "Agent": None}, "queued"),
        ({"DisconnectTimestamp": None, "Agent": None, "Queue": None}, "in_progress"),  # in the IVR flow
        (
            {"DisconnectTimestamp": None, "Agent": None, "Queue": None, "ConnectedToSystemTimestamp": None},
            "initiated",
        ),
        ({"Agent": None, "Queue": None}, "completed"),  # self-service in the flow
        ({"Agent": None}, "abandoned"),  # hung up in the queue
        ({"Agent": None, "NextContactId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}, "completed"),  # sent on
        (
            {"InitiationMethod": "OUTBOUND", "ConnectedToSystemTimestamp": None},
            "no_answer",
        ),
        (
            {
                "InitiationMethod": "CALLBACK",
                "ConnectedToSystemTimestamp": None,
                "DisconnectReason": "OUTBOUND_DESTINATION_ENDPOINT_ERROR",
            },
            "failed",
        ),
        ({"InitiationMethod": "API", "ConnectedToSystemTimestamp": None, "Agent": None}, "no_answer"),
    ],
)
def test_status_mapping(changes: dict[str, Any], status: str) -> None:
    assert _one(_changed(**changes)).status == status


def test_outbound_voice_is_answered_when_the_customer_picks_up() -> None:
    event = _one(_changed(InitiationMethod="OUTBOUND", ConnectedToSystemTimestamp="2026-11-03T17:20:40Z"))
    assert (event.direction, event.status) == ("outbound", "completed")
    assert event.answered_at == datetime(2026, 11, 3, 17, 20, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "channel", "direction"),
    [
        ("INBOUND", "VOICE", "inbound"),
        ("TRANSFER", "VOICE", "inbound"),
        ("QUEUE_TRANSFER", "VOICE", "inbound"),
        ("CALLBACK", "VOICE", "inbound"),
        ("OUTBOUND", "VOICE", "outbound"),
        ("EXTERNAL_OUTBOUND", "VOICE", "outbound"),
        ("API", "VOICE", "outbound"),
        ("API", "CHAT", "inbound"),
        ("AGENT_REPLY", "EMAIL", "outbound"),
        ("MONITOR", "VOICE", "internal"),
        (None, "VOICE", "inbound"),
    ],
)
def test_direction_mapping(method: str | None, channel: str, direction: str) -> None:
    assert _one(_changed(InitiationMethod=method, Channel=channel)).direction == direction


@pytest.mark.parametrize("channel", ["TASK", "VIDEO"])
def test_tasks_and_unknown_channels_are_skipped(channel: str) -> None:
    assert _events(json.dumps(_changed(Channel=channel)).encode()) == []


@pytest.mark.parametrize("address", ["anonymous", "+anonymous", "Restricted", ""])
def test_withheld_number_gives_no_identifier(address: str) -> None:
    assert _one(_changed(CustomerEndpoint__Address=address)).customer == CustomerParty()


def test_customer_id_and_transfer_chain() -> None:
    event = _one(
        _changed(
            CustomerId="CRM-000981",
            InitialContactId="0f0e0d0c-0b0a-4909-8807-060504030201",
            PreviousContactId="0f0e0d0c-0b0a-4909-8807-060504030201",
            InitiationMethod="TRANSFER",
        )
    )
    assert Identifier(kind="account", value="CRM-000981") in event.customer.identifiers
    assert event.thread_key == "0f0e0d0c-0b0a-4909-8807-060504030201"
    assert event.details.previous_contact_id == "0f0e0d0c-0b0a-4909-8807-060504030201"  # type: ignore[union-attr]


def test_basic_auth() -> None:
    body = (FIXTURES / "inbound-voice.json").read_bytes()
    connector.verify(_request(body, _basic("connect:s3cret-pass")), SETTINGS)
    for header in (None, _basic("connect:wrong"), "Bearer abc", "Basic %%%"):
        with pytest.raises(SignatureError):
            connector.verify(_request(body, header), SETTINGS)
    with pytest.raises(SignatureError, match="basic_auth"):
        connector.verify(_request(body, _basic("connect:s3cret-pass")), ConnectorSettings())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"ContactId": ', "$"),
        (b'"a string"', "$"),
        (b"[]", "$"),
        (b"", "$"),
        (json.dumps({k: v for k, v in _record().items() if k != "ContactId"}).encode(), "$.ContactId"),
        (json.dumps(_changed(ContactId="")).encode(), "$.ContactId"),
        (json.dumps(_changed(ContactId=42)).encode(), "$.ContactId"),
        (json.dumps(_changed(Channel=None)).encode(), "$.Channel"),
        (json.dumps(_changed(InitiationTimestamp="3rd of November")).encode(), "$.InitiationTimestamp"),
        (json.dumps(_changed(LastUpdateTimestamp=None)).encode(), "$.LastUpdateTimestamp"),
        (json.dumps(_changed(Queue__Duration=-4)).encode(), "$.Queue.Duration"),
        (json.dumps(_changed(Agent__ConnectedToAgentTimestamp=17)).encode(), "$.Agent.ConnectedToAgentTimestamp"),
        (json.dumps(_changed(DisconnectTimestamp="2026-11-03T17:00:00Z")).encode(), "$.DisconnectTimestamp"),
        (
            json.dumps(_changed(Agent__ConnectedToAgentTimestamp="2026-11-03T17:00:00Z")).encode(),
            "$.Agent.ConnectedToAgentTimestamp",
        ),
        (json.dumps([_record(), {"Channel": "VOICE"}]).encode(), "$[1].ContactId"),
        (json.dumps(_changed(Attributes={"note": "a\u0000b"})).encode(), "$"),
    ],
)
def test_payload_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _events(body)
    assert caught.value.field == field


def test_reply_and_assemble() -> None:
    assert connector.reply.status == 200
    with pytest.raises(NotImplementedError):
        connector.assemble([])
