"""Twilio Programmable Voice: the incoming-call webhook and call status callbacks.

Payload. Twilio sends `application/x-www-form-urlencoded` POST parameters (or the same parameters in the query
string when the number's webhook method is GET):

- every request: `CallSid` (`CA…`), `AccountSid`, `From`, `To`, `Direction` (`inbound`, `outbound-api`,
  `outbound-dial`), `CallStatus` (`queued`, `initiated`, `ringing`, `in-progress`, `completed`, `busy`,
  `no-answer`, `failed`, `canceled`), `ParentCallSid` on child legs, `CallerName` when caller-name lookup is on,
  `StirVerstat` on inbound calls with a STIR/SHAKEN result (`TN-Validation-Passed-A`, `-B`, `-C`,
  `TN-Validation-Failed-…`, `No-TN-Validation`);
- status callbacks add `CallbackSource=call-progress-events`, `SequenceNumber` (0, 1, 2 … in the order the events
  fired), `Timestamp` (RFC 2822, `Mon, 16 Aug 2010 03:45:01 +0000`), and on the final one `CallDuration`
  (seconds) and `RecordingUrl` when the call was recorded.

Signature. `X-Twilio-Signature` is base64(HMAC-SHA1(auth token, the URL Twilio called + every POST parameter name
and value, sorted by name)); see `connectors._twilio`. The connector secret is the account's auth token; the URL is
the public one configured on Twilio, never the internal host.

Normalize. Every request about one CallSid folds into one interaction (external_id = CallSid), whatever order they
arrive in: the incoming-call webhook (no SequenceNumber) is revision 0, a status callback SequenceNumber + 1, so
the last state wins. The customer is `From` on inbound calls and `To` on outbound ones (`outbound-api`,
`outbound-dial`); the other number is the business endpoint. Withheld callers (`anonymous`, `+266696687`,
`restricted`, `unknown`, empty) and Twilio Client identities (`client:…`) give no identifier;
`StirVerstat=TN-Validation-Passed-A` makes the caller's number carrier-attested, anything else leaves it unverified.
`occurred_at` is the callback's `Timestamp` (the receive time when it has none) — on a final callback with
`CallDuration`, Timestamp − CallDuration, the start of the call; `answered_at` is the `in-progress` Timestamp,
`ended_at` the final one, and `talk_seconds` is `CallDuration` of a `completed` call (Twilio answers an inbound
call as it starts, so there `answered_at` is Timestamp − CallDuration too). Child legs share the parent's
`thread_key`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import ClassVar

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, WebhookRequest
from connectors._common import first_values, optional_int, required
from connectors._twilio import verify_twilio
from schemas import Channel, CustomerParty, Direction, Identifier, InteractionEvent, InteractionStatus, VoiceDetails
from schemas._interaction import Endpoint

CALL_STATUS: dict[str, InteractionStatus] = {
    "queued": "queued",
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "in_progress",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no_answer",
    "failed": "failed",
    "canceled": "canceled",
}
FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
CALL_DIRECTION: dict[str, Direction] = {
    "inbound": "inbound",
    "outbound-api": "outbound",
    "outbound-dial": "outbound",
    "trunking-terminating": "inbound",  # Elastic SIP Trunking: PSTN → your PBX
    "trunking-originating": "outbound",  # Elastic SIP Trunking: your PBX → PSTN
}
WITHHELD_CALLERS = frozenset(
    {"", "anonymous", "restricted", "unknown", "private", "withheld", "unavailable", "blocked", "+266696687"}
)
ATTESTED = "TN-Validation-Passed-A"
EXTRA_ATTRIBUTES = (("account_sid", "AccountSid"), ("answered_by", "AnsweredBy"), ("forwarded_from", "ForwardedFrom"))
EMPTY_TWIML = Reply(200, "text/xml", b'<?xml version="1.0" encoding="UTF-8"?><Response/>')


class TwilioVoice:
    name: ClassVar[str] = "twilio-voice"
    channel: ClassVar[Channel] = "voice"
    reply: ClassVar[Reply] = EMPTY_TWIML

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        verify_twilio(request, settings)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        params = request.form() if request.method == "POST" else list(request.query)
        return Parsed(events=[call_event(first_values(params), received_at=request.received_at)])

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("Twilio never splits a call into parts")


def call_event(fields: Mapping[str, str], *, received_at: datetime) -> InteractionEvent:
    """One Twilio voice request (webhook or status callback) as an interaction event."""
    call_sid = _text(fields, "CallSid", 128)
    if call_sid is None:
        raise PayloadError("`CallSid` is missing", field="CallSid")
    raw_status = required(fields, "CallStatus").strip().lower()
    if raw_status not in CALL_STATUS:
        raise PayloadError(f"unknown CallStatus {raw_status[:40]!r}", field="CallStatus")
    raw_direction = required(fields, "Direction").strip().lower()
    if raw_direction not in CALL_DIRECTION:
        raise PayloadError(f"unknown Direction {raw_direction[:40]!r}", field="Direction")
    direction = CALL_DIRECTION[raw_direction]
    sequence = _non_negative(fields, "SequenceNumber")
    duration = _non_negative(fields, "CallDuration")

    at = _rfc2822(fields, "Timestamp") or received_at
    occurred_at, answered_at, ended_at, talk_seconds = at, None, None, None
    if raw_status == "in-progress":
        answered_at = at
    if raw_status in FINAL_STATUSES:
        ended_at = at
        if duration is not None:
            occurred_at = at - timedelta(seconds=duration)
            if raw_status == "completed":
                talk_seconds = float(duration)
                if direction == "inbound" and duration > 0:
                    answered_at = occurred_at  # Twilio answers an inbound call when it starts

    caller_field, business_field = ("From", "To") if direction == "inbound" else ("To", "From")
    customer_number = _text(fields, caller_field, 320)
    business_number = _text(fields, business_field, 320)
    stir_verstat = _text(fields, "StirVerstat", 64)
    caller_name = _text(fields, "CallerName", 256) if direction == "inbound" else None
    identifiers = []
    if customer_number is not None and is_reachable_number(customer_number):
        attested = direction == "inbound" and stir_verstat == ATTESTED
        verification = "carrier_attested" if attested else "unverified"
        identifiers.append(Identifier(kind="phone", value=customer_number, verification=verification))
    endpoint = None
    if business_number:
        kind = "other" if business_number.lower().startswith("client:") else "phone"
        endpoint = Endpoint(kind=kind, value=business_number)

    parent_call_sid = _text(fields, "ParentCallSid", 128)
    attributes = {key: value for key, name in EXTRA_ATTRIBUTES if (value := _text(fields, name, 4096))}
    return InteractionEvent(
        source=TwilioVoice.name,
        external_id=call_sid,
        channel="voice",
        direction=direction,
        occurred_at=occurred_at,
        status=CALL_STATUS[raw_status],
        revision=0 if sequence is None else sequence + 1,
        answered_at=answered_at,
        ended_at=ended_at,
        customer=CustomerParty(identifiers=identifiers, display_name=caller_name if identifiers else None),
        endpoint=endpoint,
        thread_key=parent_call_sid or call_sid,
        talk_seconds=talk_seconds,
        attributes=attributes,
        details=VoiceDetails(
            caller_name=caller_name,
            stir_verstat=stir_verstat,
            parent_call_id=parent_call_sid,
            recording_url=_text(fields, "RecordingUrl", 2048),
        ),
    )


def is_reachable_number(value: str) -> bool:
    """False for withheld callers and Twilio Client identities: they identify no customer."""
    lowered = value.strip().lower()
    return lowered not in WITHHELD_CALLERS and not lowered.startswith("client:")


def _text(fields: Mapping[str, str], name: str, limit: int) -> str | None:
    value = (fields.get(name) or "").strip()
    if not value:
        return None
    if len(value) > limit:
        raise PayloadError(f"`{name}` is longer than {limit} characters", field=name)
    if "\x00" in value:
        raise PayloadError(f"`{name}` contains a NUL character", field=name)
    return value


def _non_negative(fields: Mapping[str, str], name: str) -> int | None:
    number = optional_int(fields, name)
    if number is not None and not 0 <= number <= 31_536_000:
        raise PayloadError(f"`{name}` must be between 0 and 31536000, not {number}", field=name)
    return number


def _rfc2822(fields: Mapping[str, str], name: str) -> datetime | None:
    value = _text(fields, name, 64)
    if value is None:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise PayloadError(f"`{name}` is not an RFC 2822 date: {value[:40]!r}", field=name) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


connector = TwilioVoice()
