"""Amazon Connect contact records (CTRs), as a Kinesis stream consumer forwards them over HTTP.

Payload. A JSON body holding one contact record or an array of them (contact records data model, format version
2017-03-10). Fields used: `ContactId`, `Channel` (`VOICE`, `CHAT`, `TASK`, `EMAIL`), `InitiationMethod` (`INBOUND`,
`OUTBOUND`, `TRANSFER`, `QUEUE_TRANSFER`, `CALLBACK`, `API`, `DISCONNECT`, `MONITOR`, `EXTERNAL_OUTBOUND`,
`WEBRTC_API`, `AGENT_REPLY`, `FLOW`), `InitiationTimestamp`, `ConnectedToSystemTimestamp`, `DisconnectTimestamp`,
`LastUpdateTimestamp` (ISO 8601 UTC), `CustomerEndpoint` / `SystemEndpoint` (`Address`, `Type`:
`TELEPHONE_NUMBER` or `EMAIL_ADDRESS`), `Queue` (`Name`, `Duration`, `EnqueueTimestamp`), `Agent` (`Username`,
`ConnectedToAgentTimestamp`, `CustomerHoldDuration`, `NumberOfHolds`, `AgentInteractionDuration`),
`PreviousContactId` / `NextContactId` / `InitialContactId`, `TransferCompletedTimestamp`, `TransferredToEndpoint`,
`DisconnectReason`, `Recording.Location`, `Name` (an email's subject), `CustomerId`, `Attributes` (string map).
`Agent` and `Queue` are null when the contact never reached them; unknown fields are ignored.

Signature. Amazon Connect does not sign what it exports: the consumer calls the URL with HTTP basic auth
(`https://user:password@…/v1/webhooks/amazon-connect`), checked against the connector's `basic_auth`.

Normalize. One interaction per `ContactId`; revision = `LastUpdateTimestamp` in epoch milliseconds, so a record
delivered again (Connect delivers at least once, and again after updates) never overwrites a newer one. Channel
VOICE → voice, CHAT → chat, EMAIL → email; TASK records (internal work items, no customer contact) and channels not
known yet are skipped. Direction: OUTBOUND, EXTERNAL_OUTBOUND, AGENT_REPLY, FLOW and API voice contacts → outbound;
MONITOR → internal; the rest → inbound. The customer is `CustomerEndpoint` (phone or email; withheld numbers give
none), the business endpoint `SystemEndpoint`. Status:

- not disconnected yet: agent connected → in_progress; waiting in a queue → queued; in a flow → in_progress; else
  initiated;
- an outbound, callback or API voice contact the customer never answered (no `ConnectedToSystemTimestamp`) →
  failed when `DisconnectReason` is `OUTBOUND_…` or `TELECOM_PROBLEM`, else no_answer;
- an agent connected → completed;
- queued, no agent, not transferred on → abandoned;
- otherwise (self-service in a flow, transferred on) → completed.

`answered_at` is when the customer answered for outbound voice and when the agent connected otherwise; queue wait,
hold and talk seconds come from `Queue.Duration`, `Agent.CustomerHoldDuration` and
`Agent.AgentInteractionDuration`; a `NextContactId` or a completed transfer counts one transfer; transfers share
the `thread_key` of their `InitialContactId`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, ClassVar

import msgspec
from msgspec import Meta, Struct

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, WebhookRequest
from connectors._common import check_basic_auth
from schemas import (
    Channel,
    ChatDetails,
    CustomerParty,
    Direction,
    EmailDetails,
    Identifier,
    InteractionEvent,
    InteractionStatus,
    VoiceDetails,
)
from schemas._interaction import Endpoint

Text = Annotated[str, Meta(max_length=32_767)]
Duration = Annotated[float, Meta(ge=0, le=31_536_000)]


class EndpointView(Struct, rename="pascal"):
    address: Text | None = None
    type: Text | None = None


class QueueView(Struct, rename="pascal"):
    name: Text | None = None
    duration: Duration | None = None
    enqueue_timestamp: datetime | None = None


class AgentView(Struct, rename="pascal"):
    username: Text | None = None
    connected_to_agent_timestamp: datetime | None = None
    customer_hold_duration: Duration | None = None
    number_of_holds: Annotated[int, Meta(ge=0)] | None = None
    agent_interaction_duration: Duration | None = None


class RecordingView(Struct, rename="pascal"):
    location: Annotated[str, Meta(max_length=2000)] | None = None


class ContactRecordView(Struct, rename="pascal"):
    contact_id: Annotated[str, Meta(min_length=1, max_length=256)]
    channel: Text
    initiation_timestamp: datetime
    last_update_timestamp: datetime
    initiation_method: Annotated[str, Meta(max_length=64)] | None = None
    connected_to_system_timestamp: datetime | None = None
    disconnect_timestamp: datetime | None = None
    customer_endpoint: EndpointView | None = None
    system_endpoint: EndpointView | None = None
    queue: QueueView | None = None
    agent: AgentView | None = None
    previous_contact_id: Annotated[str, Meta(max_length=128)] | None = None
    next_contact_id: Annotated[str, Meta(max_length=128)] | None = None
    initial_contact_id: Annotated[str, Meta(max_length=256)] | None = None
    transfer_completed_timestamp: datetime | None = None
    transferred_to_endpoint: EndpointView | None = None
    disconnect_reason: Annotated[str, Meta(max_length=128)] | None = None
    recording: RecordingView | None = None
    name: Annotated[str, Meta(max_length=998)] | None = None
    customer_id: Annotated[str, Meta(max_length=320)] | None = None
    attributes: dict[str, str | None] | None = None


_records = msgspec.json.Decoder(ContactRecordView | list[ContactRecordView])
CHANNELS: dict[str, Channel] = {"VOICE": "voice", "CHAT": "chat", "EMAIL": "email"}
OUTBOUND_METHODS = frozenset({"OUTBOUND", "EXTERNAL_OUTBOUND", "AGENT_REPLY", "FLOW"})
CUSTOMER_MUST_ANSWER = frozenset({"OUTBOUND", "EXTERNAL_OUTBOUND", "CALLBACK", "API"})
WITHHELD = frozenset({"anonymous", "restricted", "unknown", "private", "withheld", "unavailable", "blocked"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)


class AmazonConnect:
    name: ClassVar[str] = "amazon-connect"
    channel: ClassVar[Channel] = "voice"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        check_basic_auth(request, settings)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        if b"\\u0000" in request.body:
            raise PayloadError("NUL characters (\\u0000) are not allowed in contact records", field="$")
        try:
            decoded = _records.decode(request.body)
        except msgspec.ValidationError as exc:
            raise _payload_error(exc, "") from None
        except msgspec.DecodeError as exc:
            raise _payload_error(exc, "malformed JSON: ") from None
        if isinstance(decoded, list):
            if not decoded:
                raise PayloadError("the list holds no contact records", field="$")
            pairs = [(record, f"$[{index}]") for index, record in enumerate(decoded)]
        else:
            pairs = [(decoded, "$")]
        events = [event for record, path in pairs if (event := contact_event(record, path)) is not None]
        return Parsed(events=events)

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("contact records are never split")


def contact_event(record: ContactRecordView, path: str = "$") -> InteractionEvent | None:
    """One contact record as an interaction event; None for records that are no customer contact (tasks)."""
    channel = CHANNELS.get(record.channel.upper())
    if channel is None:
        return None
    method = (record.initiation_method or "").upper()
    direction: Direction = "inbound"
    if method in OUTBOUND_METHODS or (method == "API" and channel == "voice"):
        direction = "outbound"
    elif method == "MONITOR":
        direction = "internal"

    agent = record.agent or AgentView()
    queue = record.queue or QueueView()
    customer_answers = channel == "voice" and method in CUSTOMER_MUST_ANSWER
    occurred_at = _aware(record.initiation_timestamp)
    if customer_answers:
        answered_at, answered_field = record.connected_to_system_timestamp, "ConnectedToSystemTimestamp"
    else:
        answered_at, answered_field = agent.connected_to_agent_timestamp, "Agent.ConnectedToAgentTimestamp"
    answered_at = _not_before(answered_at, occurred_at, f"{path}.{answered_field}")
    ended_at = _not_before(record.disconnect_timestamp, occurred_at, f"{path}.DisconnectTimestamp")
    transferred = bool(
        record.next_contact_id
        or record.transfer_completed_timestamp
        or (record.transferred_to_endpoint and record.transferred_to_endpoint.address)
    )
    last_update = _aware(record.last_update_timestamp)
    if last_update < _EPOCH:
        raise PayloadError("`LastUpdateTimestamp` is before 1970", field=f"{path}.LastUpdateTimestamp")

    details: VoiceDetails | ChatDetails | EmailDetails
    if channel == "voice":
        location = record.recording.location if record.recording else None
        details = VoiceDetails(
            previous_contact_id=record.previous_contact_id or None,
            next_contact_id=record.next_contact_id or None,
            number_of_holds=agent.number_of_holds,
            initiation_method=record.initiation_method or None,
            disconnect_reason=record.disconnect_reason or None,
            recording_url=f"s3://{location}" if location else None,
        )
    elif channel == "chat":
        details = ChatDetails(platform="amazon-connect", conversation_id=record.initial_contact_id or record.contact_id)
    else:
        details = EmailDetails()

    return InteractionEvent(
        source=AmazonConnect.name,
        external_id=record.contact_id,
        channel=channel,
        direction=direction,
        occurred_at=occurred_at,
        status=contact_status(record, customer_answers=customer_answers, transferred=transferred),
        revision=(last_update - _EPOCH) // timedelta(milliseconds=1),
        answered_at=answered_at,
        ended_at=ended_at,
        customer=_customer(record),
        endpoint=_endpoint(record.system_endpoint),
        agent=_short(agent.username),
        queue=_short(queue.name),
        thread_key=record.initial_contact_id or record.contact_id,
        subject=record.name if channel == "email" and record.name else None,
        queue_wait_seconds=queue.duration,
        hold_seconds=agent.customer_hold_duration,
        talk_seconds=agent.agent_interaction_duration,
        transfer_count=1 if transferred else 0,
        attributes=_attributes(record.attributes),
        details=details,
    )


def contact_status(record: ContactRecordView, *, customer_answers: bool, transferred: bool) -> InteractionStatus:
    agent_connected = record.agent is not None and record.agent.connected_to_agent_timestamp is not None
    enqueued = record.queue is not None and record.queue.enqueue_timestamp is not None
    connected = record.connected_to_system_timestamp is not None
    if record.disconnect_timestamp is None:
        if agent_connected:
            return "in_progress"
        if enqueued:
            return "queued"
        return "in_progress" if connected else "initiated"
    if customer_answers and not connected:
        reason = (record.disconnect_reason or "").upper()
        return "failed" if reason.startswith("OUTBOUND_") or reason == "TELECOM_PROBLEM" else "no_answer"
    if agent_connected:
        return "completed"
    if enqueued and not transferred:
        return "abandoned"
    return "completed"


def _customer(record: ContactRecordView) -> CustomerParty:
    identifiers = []
    endpoint = record.customer_endpoint
    address = (endpoint.address or "").strip() if endpoint else ""
    kind = (endpoint.type or "").upper() if endpoint else ""
    if address and len(address) <= 320:
        if kind == "TELEPHONE_NUMBER" and address.lower().lstrip("+") not in WITHHELD:
            identifiers.append(Identifier(kind="phone", value=address))
        elif kind == "EMAIL_ADDRESS":
            identifiers.append(Identifier(kind="email", value=address))
    if record.customer_id and record.customer_id.strip():
        identifiers.append(Identifier(kind="account", value=record.customer_id.strip()))
    return CustomerParty(identifiers=identifiers)


def _endpoint(endpoint: EndpointView | None) -> Endpoint | None:
    address = (endpoint.address or "").strip() if endpoint else ""
    if not endpoint or not address or len(address) > 320:
        return None
    kind = {"TELEPHONE_NUMBER": "phone", "EMAIL_ADDRESS": "email"}.get((endpoint.type or "").upper(), "other")
    return Endpoint(kind=kind, value=address)  # type: ignore[arg-type]


def _attributes(attributes: dict[str, str | None] | None) -> dict[str, str]:
    """Contact attributes set by the flows: non-empty ones, at most 100, each cut to 4096 characters."""
    kept: dict[str, str] = {}
    for key, value in (attributes or {}).items():
        if value and value.strip() and "\x00" not in key + value and len(kept) < 100:
            kept[key] = value[:4096]
    return kept


def _short(value: str | None) -> str | None:
    """Agent and queue names, cut to the schema's 512 characters."""
    trimmed = (value or "").strip()[:512]
    return trimmed or None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _not_before(value: datetime | None, start: datetime, field: str) -> datetime | None:
    if value is None:
        return None
    value = _aware(value)
    if value < start:
        raise PayloadError(f"`{field.rsplit('.', 1)[-1]}` is earlier than `InitiationTimestamp`", field=field)
    return value


def _payload_error(exc: msgspec.DecodeError, prefix: str) -> PayloadError:
    match = _AT_PATH.match(str(exc))
    assert match is not None
    message, path = match["message"], match["path"] or "$"
    missing = re.match(r"Object missing required field `([^`]+)`", message)
    if missing:
        path = f"{path}.{missing[1]}"
    return PayloadError(f"{prefix}{message}", field=path)


connector = AmazonConnect()
