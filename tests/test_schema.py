"""The shared schema: round-trips, validation, and the JSON Schema export."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from schemas import (
    Attachment,
    CustomerParty,
    EmailDetails,
    Endpoint,
    Identifier,
    InteractionEvent,
    VoiceDetails,
)


def full_event() -> InteractionEvent:
    start = datetime(2026, 11, 2, 9, 30, tzinfo=timezone(timedelta(hours=-5)))
    return InteractionEvent(
        source="native",
        external_id="call-1",
        channel="voice",
        direction="inbound",
        occurred_at=start,
        answered_at=start + timedelta(seconds=95),
        ended_at=start + timedelta(seconds=600),
        status="completed",
        revision=3,
        customer=CustomerParty(
            identifiers=[Identifier(kind="phone", value="+14155550100", verification="carrier_attested")],
            display_name="Ada Lovelace",
        ),
        endpoint=Endpoint(kind="phone", value="+18005550199"),
        agent="agent.kim",
        queue="billing",
        thread_key="case-77",
        reason="billing",
        disposition="resolved",
        queue_wait_seconds=95,
        hold_seconds=40.5,
        talk_seconds=464.5,
        transfer_count=1,
        attachments=[Attachment(filename="bill.pdf", content_type="application/pdf", size_bytes=1024)],
        attributes={"crm_case": "77"},
        details=VoiceDetails(stir_verstat="TN-Validation-Passed-A", number_of_holds=1),
    )


def test_event_round_trips_through_json() -> None:
    event = full_event()
    decoded = msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent)
    assert decoded == event
    assert decoded.occurred_at.utcoffset() == timedelta(hours=-5)
    assert decoded.details == VoiceDetails(stir_verstat="TN-Validation-Passed-A", number_of_holds=1)


def test_channel_details_are_a_tagged_union() -> None:
    encoded = msgspec.json.encode(full_event())
    assert json.loads(encoded)["details"]["type"] == "voice"


def test_naive_timestamps_are_rejected() -> None:
    body = json.dumps(
        {
            "source": "native",
            "external_id": "x",
            "channel": "sms",
            "direction": "inbound",
            "occurred_at": "2026-01-01T10:00:00",
        }
    ).encode()
    with pytest.raises(msgspec.ValidationError, match="occurred_at"):
        msgspec.json.decode(body, type=InteractionEvent)


def test_details_must_match_the_channel() -> None:
    with pytest.raises(msgspec.ValidationError, match="details"):
        msgspec.convert(
            {
                "source": "native",
                "external_id": "x",
                "channel": "sms",
                "direction": "inbound",
                "occurred_at": datetime.now(UTC).isoformat(),
                "details": {"type": "email"},
            },
            InteractionEvent,
        )
    assert EmailDetails().references == []


def test_unknown_fields_are_rejected() -> None:
    body = json.dumps(
        {
            "source": "n",
            "external_id": "x",
            "channel": "sms",
            "direction": "inbound",
            "occurred_at": "2026-01-01T10:00:00Z",
            "colour": "blue",
        }
    ).encode()
    with pytest.raises(msgspec.ValidationError, match="colour"):
        msgspec.json.decode(body, type=InteractionEvent)


def test_unify_schema_writes_json_schema_with_descriptions(tmp_path) -> None:
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, "-m", "unify.cli", "schema", "-o", str(out)], check=True)
    document = json.loads(out.read_text())
    event = document["$defs"]["InteractionEvent"]
    assert "event key" in event["description"]
    assert set(event["required"]) == {"source", "external_id", "channel", "direction", "occurred_at"}
    assert set(event["properties"]["channel"]["enum"]) == {"voice", "sms", "email", "chat"}
    assert "Problem" in document["$defs"]
    levels = document["$defs"]["Identifier"]["properties"]["verification"]["enum"]
    assert set(levels) == {"unverified", "carrier_attested", "signed", "authenticated"}
