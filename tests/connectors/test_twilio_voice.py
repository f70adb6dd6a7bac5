"""twilio-voice: Twilio's incoming-call webhook and call status callbacks, normalized field by field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors._twilio import twilio_signature
from connectors.phone.twilio_voice import connector
from schemas import CustomerParty, Identifier, InteractionEvent, VoiceDetails
from schemas._interaction import Endpoint

FIXTURES = Path(__file__).parents[1] / "fixtures" / "twilio-voice"
URL = "https://unify.example.com/v1/webhooks/twilio-voice"
TOKEN = "12345"
RECEIVED = datetime(2026, 11, 3, 16, 0, 0, tzinfo=UTC)


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _request(body: bytes, *, signature: str | None = None, method: str = "POST", url: str = URL) -> WebhookRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    query = tuple(parse_qsl(url.partition("?")[2]))
    return WebhookRequest(method=method, url=url, headers=headers, body=body, received_at=RECEIVED, query=query)


def _parse(body: bytes) -> InteractionEvent:
    [event] = connector.parse(_request(body), ConnectorSettings()).events
    return event


def _with(name: str, **changes: str | None) -> bytes:
    fields = dict(parse_qsl(_fixture(name).decode(), keep_blank_values=True))
    for key, value in changes.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return urlencode(fields).encode()


def test_incoming_call_webhook() -> None:
    event = _parse(_fixture("incoming-call.txt"))
    assert event.source == "twilio-voice"
    assert event.external_id == "CA5a0e1f4b0c3d2e1f0a9b8c7d6e5f4a3b"
    assert (event.channel, event.direction, event.status, event.revision) == ("voice", "inbound", "ringing", 0)
    assert event.occurred_at == RECEIVED  # the webhook carries no Timestamp
    assert (event.answered_at, event.ended_at, event.talk_seconds) == (None, None, None)
    assert event.customer == CustomerParty(
        identifiers=[Identifier(kind="phone", value="+14155550123", verification="carrier_attested")],
        display_name="DOE JANE",
    )
    assert event.endpoint == Endpoint(kind="phone", value="+18005550100")
    assert event.thread_key == event.external_id
    assert event.attributes == {"account_sid": "AC8d88ba5085adeac4015ea92ec9a81ded"}
    assert event.details == VoiceDetails(caller_name="DOE JANE", stir_verstat="TN-Validation-Passed-A")


def test_final_callback_of_an_inbound_call() -> None:
    event = _parse(_fixture("incoming-completed.txt"))
    ended = datetime(2026, 11, 3, 14, 5, 9, tzinfo=UTC)
    assert (event.status, event.revision) == ("completed", 1)
    assert event.ended_at == ended
    assert event.occurred_at == event.answered_at == ended - timedelta(seconds=184)
    assert event.talk_seconds == 184
    assert event.details is not None
    assert event.details.recording_url == (  # type: ignore[union-attr]
        "https://api.twilio.com/2010-04-01/Accounts/AC8d88ba5085adeac4015ea92ec9a81ded/Recordings/"
        "RE9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    )


@pytest.mark.parametrize(
    ("name", "status", "revision", "at"),
    [
        ("outbound-initiated.txt", "initiated", 1, datetime(2026, 11, 3, 15, 0, 0, tzinfo=UTC)),
        ("outbound-ringing.txt", "ringing", 2, datetime(2026, 11, 3, 15, 0, 2, tzinfo=UTC)),
        ("outbound-in-progress.txt", "in_progress", 3, datetime(2026, 11, 3, 15, 0, 9, tzinfo=UTC)),
        ("outbound-completed.txt", "completed", 4, datetime(2026, 11, 3, 15, 2, 36, tzinfo=UTC)),
    ],
)
def test_outbound_status_callbacks(name: str, status: str, revision: int, at: datetime) -> None:
    event = _parse(_fixture(name))
    assert (event.external_id, event.direction, event.status, event.revision) == (
        "CAbe982f58915a2def4cf7aaa1f1766236",
        "outbound",
        status,
        revision,
    )
    # outbound: the customer is To, the business is From; no caller name or attestation applies
    assert event.customer == CustomerParty(identifiers=[Identifier(kind="phone", value="+14155550199")])
    assert event.endpoint == Endpoint(kind="phone", value="+18005550100")
    if status == "in_progress":
        assert event.occurred_at == event.answered_at == at
    elif status == "completed":
        assert (event.ended_at, event.talk_seconds) == (at, 147)
        assert event.occurred_at == at - timedelta(seconds=147)
        assert event.answered_at is None  # the in-progress callback knows when the customer answered
        assert event.attributes["answered_by"] == "human"
    else:
        assert (event.occurred_at, event.answered_at, event.ended_at) == (at, None, None)


@pytest.mark.parametrize(("twilio", "ours"), [("busy", "busy"), ("no-answer", "no_answer"), ("failed", "failed")])
def test_unsuccessful_calls_end_without_talk_time(twilio: str, ours: str) -> None:
    event = _parse(_with("outbound-completed.txt", CallStatus=twilio, CallDuration="0"))
    assert (event.status, event.talk_seconds, event.answered_at) == (ours, None, None)
    assert event.ended_at == datetime(2026, 11, 3, 15, 2, 36, tzinfo=UTC)


def test_queued_and_canceled() -> None:
    assert _parse(_with("outbound-initiated.txt", CallStatus="queued")).status == "queued"
    assert _parse(_with("outbound-completed.txt", CallStatus="canceled", CallDuration=None)).status == "canceled"


@pytest.mark.parametrize("caller", ["+266696687", "anonymous", "Restricted", "unknown", "", "client:alice"])
def test_withheld_callers_give_no_identifier(caller: str) -> None:
    event = _parse(_with("anonymous-caller.txt", From=caller, Caller=caller, CallerName="Anonymous"))
    assert event.customer == CustomerParty()
    assert event.endpoint == Endpoint(kind="phone", value="+18005550100")


def test_anonymous_fixture() -> None:
    event = _parse(_fixture("anonymous-caller.txt"))
    assert (event.customer, event.status) == (CustomerParty(), "ringing")


@pytest.mark.parametrize("verstat", ["TN-Validation-Passed-B", "TN-Validation-Passed-C", "No-TN-Validation", None])
def test_only_attestation_a_is_carrier_attested(verstat: str | None) -> None:
    event = _parse(_with("incoming-call.txt", StirVerstat=verstat))
    assert event.customer.identifiers == [Identifier(kind="phone", value="+14155550123", verification="unverified")]


def test_outbound_dial_child_leg_shares_the_parent_thread() -> None:
    body = _with("outbound-ringing.txt", Direction="outbound-dial", ParentCallSid="CA5a0e1f4b0c3d2e1f0a9b8c7d6e5f4a3b")
    event = _parse(body)
    assert event.direction == "outbound"
    assert event.thread_key == "CA5a0e1f4b0c3d2e1f0a9b8c7d6e5f4a3b"
    assert event.details == VoiceDetails(parent_call_id="CA5a0e1f4b0c3d2e1f0a9b8c7d6e5f4a3b")


def test_timestamp_without_offset_is_utc_and_get_requests_read_the_query() -> None:
    query = _with("outbound-ringing.txt", Timestamp="Tue, 03 Nov 2026 15:00:02 -0000").decode()
    [event] = connector.parse(_request(b"", method="GET", url=f"{URL}?{query}"), ConnectorSettings()).events
    assert event.occurred_at == datetime(2026, 11, 3, 15, 0, 2, tzinfo=UTC)
    assert event.status == "ringing"


def test_callback_without_timestamp_uses_the_receive_time() -> None:
    event = _parse(_with("outbound-in-progress.txt", Timestamp=None))
    assert event.occurred_at == event.answered_at == RECEIVED


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"CallSid": None}, "CallSid"),
        ({"CallSid": " "}, "CallSid"),
        ({"CallStatus": None}, "CallStatus"),
        ({"CallStatus": "answered"}, "CallStatus"),
        ({"Direction": None}, "Direction"),
        ({"Direction": "sideways"}, "Direction"),
        ({"SequenceNumber": "three"}, "SequenceNumber"),
        ({"SequenceNumber": "-1"}, "SequenceNumber"),
        ({"CallDuration": "1.5s"}, "CallDuration"),
        ({"CallDuration": "99999999999"}, "CallDuration"),
        ({"Timestamp": "yesterday"}, "Timestamp"),
        ({"To": "+1" * 200}, "To"),
        ({"From": "+1415\x00"}, "From"),
    ],
)
def test_payload_errors_name_the_field(changes: dict[str, str | None], field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _parse(_with("outbound-completed.txt", **changes))
    assert caught.value.field == field


def test_a_body_that_is_not_a_form_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        _parse(b"\xff\xfe not utf-8")
    with pytest.raises(PayloadError):
        _parse(b"{}")  # no CallSid at all


def test_signature_over_the_public_url() -> None:
    body = _fixture("incoming-call.txt")
    signature = twilio_signature(TOKEN, URL, parse_qsl(body.decode(), keep_blank_values=True))
    connector.verify(_request(body, signature=signature), ConnectorSettings(secret=TOKEN))
    with pytest.raises(SignatureError):
        connector.verify(_request(body + b"&Digits=1", signature=signature), ConnectorSettings(secret=TOKEN))
    with pytest.raises(SignatureError):
        connector.verify(_request(body, signature=signature), ConnectorSettings(secret="another token"))
    with pytest.raises(SignatureError):
        connector.verify(_request(body), ConnectorSettings(secret=TOKEN))


def test_reply_is_empty_twiml_and_calls_are_never_split() -> None:
    assert (connector.reply.status, connector.reply.content_type) == (200, "text/xml")
    assert connector.reply.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    with pytest.raises(NotImplementedError):
        connector.assemble([])
