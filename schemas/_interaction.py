"""The interaction event: one contact on any channel, in one shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from msgspec import Meta, Struct, field

from schemas._common import (
    AwareDatetime,
    Channel,
    Direction,
    EndpointKind,
    ExternalId,
    IdentifierKind,
    InteractionStatus,
    Seconds,
    ShortText,
    Source,
    Verification,
)

MessageId = Annotated[str, Meta(max_length=998)]
Address = Annotated[str, Meta(max_length=320)]
AttributeValue = Annotated[str, Meta(max_length=4096)]
# Timestamps are stored in UTC: one whose offset moves it out of Python's years 1-9999 cannot be stored.
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


class Identifier(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One way of recognising the customer: a phone number, an email address, a chat handle, an account number.

    Values are normalized on ingest (phone numbers to E.164, emails lower-cased), so formatting does not matter."""

    kind: IdentifierKind
    value: Annotated[str, Meta(min_length=1, max_length=320)]
    verification: Verification = "unverified"


class CustomerParty(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """The customer side of a contact, as the platform saw it."""

    identifiers: Annotated[list[Identifier], Meta(max_length=32)] = field(default_factory=list)
    display_name: Annotated[str, Meta(max_length=256)] | None = None


class Endpoint(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """The business endpoint the customer reached: a number dialled, an address or inbox written to, a chat app."""

    kind: EndpointKind
    value: Annotated[str, Meta(min_length=1, max_length=320)]


class Attachment(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """Metadata of a file that came with the contact. The file itself stays with the platform."""

    filename: Annotated[str, Meta(max_length=512)] | None = None
    content_type: Annotated[str, Meta(max_length=255)] | None = None
    size_bytes: Annotated[int, Meta(ge=0)] | None = None
    url: Annotated[str, Meta(max_length=2048)] | None = None


class VoiceDetails(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True, tag="voice"):
    """Details only a phone call has."""

    caller_name: Annotated[str, Meta(max_length=256)] | None = None
    stir_verstat: Annotated[str, Meta(max_length=64)] | None = None
    parent_call_id: Annotated[str, Meta(max_length=128)] | None = None
    previous_contact_id: Annotated[str, Meta(max_length=128)] | None = None
    next_contact_id: Annotated[str, Meta(max_length=128)] | None = None
    number_of_holds: Annotated[int, Meta(ge=0)] | None = None
    initiation_method: Annotated[str, Meta(max_length=64)] | None = None
    disconnect_reason: Annotated[str, Meta(max_length=128)] | None = None
    recording_url: Annotated[str, Meta(max_length=2048)] | None = None


class SmsDetails(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True, tag="sms"):
    """Details only a text message has."""

    transport: Annotated[str, Meta(max_length=32, description="`sms`, `mms` or `whatsapp`.")] = "sms"
    segments: Annotated[int, Meta(ge=1, le=255)] | None = None
    media_count: Annotated[int, Meta(ge=0)] | None = None
    keyword: Annotated[str, Meta(max_length=64)] | None = None


class EmailDetails(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True, tag="email"):
    """Details only an email has."""

    message_id: Annotated[str, Meta(max_length=998)] | None = None
    in_reply_to: Annotated[str, Meta(max_length=998)] | None = None
    references: Annotated[list[MessageId], Meta(max_length=256)] = field(default_factory=list)
    cc: Annotated[list[Address], Meta(max_length=256)] = field(default_factory=list)
    auto_submitted: bool = False
    bounce: bool = False
    spf: Annotated[str, Meta(max_length=32)] | None = None
    dkim: Annotated[str, Meta(max_length=32)] | None = None


class ChatDetails(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True, tag="chat"):
    """Details only a chat has."""

    platform: Annotated[str, Meta(max_length=64)] | None = None
    conversation_id: Annotated[str, Meta(max_length=256)] | None = None
    visitor_id: Annotated[str, Meta(max_length=256)] | None = None
    author_type: Annotated[str, Meta(max_length=32)] | None = None
    message_count: Annotated[int, Meta(ge=0)] | None = None


ChannelDetails = VoiceDetails | SmsDetails | EmailDetails | ChatDetails
"""Channel-specific details, tagged by the `type` field (`voice`, `sms`, `email`, `chat`)."""


class InteractionEvent(Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """One contact between a customer and the business, on any channel, as a platform reported it.

    `(source, external_id)` is the event key: sending the same key again never creates a second interaction.
    A delivery with a higher `revision` updates the interaction (a call that was ringing is now completed); one
    with an equal or lower revision is a duplicate and changes nothing, so deliveries may arrive in any order."""

    source: Source
    external_id: ExternalId
    channel: Channel
    direction: Direction
    occurred_at: AwareDatetime
    status: InteractionStatus = "received"
    revision: Annotated[
        int, Meta(ge=0, le=9_223_372_036_854_775_807, description="Orders deliveries of one event; highest wins.")
    ] = 0
    answered_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    customer: CustomerParty = field(default_factory=CustomerParty)
    endpoint: Endpoint | None = None
    agent: ShortText | None = None
    queue: ShortText | None = None
    thread_key: ShortText | None = None
    subject: Annotated[str, Meta(max_length=998)] | None = None
    text: Annotated[str, Meta(max_length=1_000_000)] | None = None
    snippet: (
        Annotated[
            str,
            Meta(
                max_length=1000, description="The new part of the text for a timeline: no quoted history or signature."
            ),
        ]
        | None
    ) = None
    reason: ShortText | None = None
    disposition: ShortText | None = None
    queue_wait_seconds: Seconds | None = None
    hold_seconds: Seconds | None = None
    talk_seconds: Seconds | None = None
    transfer_count: Annotated[int, Meta(ge=0, le=1000)] = 0
    attachments: Annotated[list[Attachment], Meta(max_length=100)] = field(default_factory=list)
    attributes: Annotated[dict[str, AttributeValue], Meta(max_length=100)] = field(default_factory=dict)
    details: ChannelDetails | None = None

    def __post_init__(self) -> None:
        if self.details is not None and type(self.details) is not DETAILS_BY_CHANNEL[self.channel]:
            kind = DETAILS_BY_CHANNEL_NAME[type(self.details)]
            raise ValueError(f"`details` of type '{kind}' do not match channel '{self.channel}'")
        for stamp in ("occurred_at", "answered_at", "ended_at"):
            value = getattr(self, stamp)
            if value is not None and not _EARLIEST <= value <= _LATEST:  # stored in UTC: it must exist there
                raise ValueError(f"`{stamp}` is outside the years 0001 to 9999 once converted to UTC")
        for stamp in ("answered_at", "ended_at"):
            value = getattr(self, stamp)
            if value is not None and value < self.occurred_at:
                raise ValueError(f"`{stamp}` is earlier than `occurred_at`")


DETAILS_BY_CHANNEL: dict[str, type] = {
    "voice": VoiceDetails,
    "sms": SmsDetails,
    "email": EmailDetails,
    "chat": ChatDetails,
}
DETAILS_BY_CHANNEL_NAME: dict[type, str] = {cls: name for name, cls in DETAILS_BY_CHANNEL.items()}
