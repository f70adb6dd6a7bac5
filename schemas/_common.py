"""Value types shared by every part of the contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta

Channel = Literal["voice", "sms", "email", "chat"]
"""The channel a contact came through."""

Direction = Literal["inbound", "outbound", "internal"]
"""Who started the contact: the customer (inbound), the business (outbound), or neither (internal)."""

Verification = Literal["unverified", "carrier_attested", "signed", "authenticated"]
"""How far an identifier can be trusted, weakest first.

- ``unverified``: asserted by the sender only (caller ID, an email From header).
- ``carrier_attested``: the carrier vouched for the number (STIR/SHAKEN attestation A).
- ``signed``: cryptographically vouched for (DKIM/SPF pass).
- ``authenticated``: the customer proved who they are (logged-in chat, IVR PIN, agent confirmation).
"""

VERIFICATION_ORDER: tuple[Verification, ...] = ("unverified", "carrier_attested", "signed", "authenticated")

IdentifierKind = Literal["phone", "email", "chat", "account", "external"]
"""What an identifier value is: a phone number, an email address, a chat handle (namespaced by platform),
a customer account number, or an id from an external system (CRM contact id)."""

EndpointKind = Literal["phone", "email", "chat", "other"]

InteractionStatus = Literal[
    "initiated",
    "ringing",
    "queued",
    "in_progress",
    "completed",
    "abandoned",
    "no_answer",
    "busy",
    "failed",
    "canceled",
    "received",
    "sent",
    "delivered",
    "undelivered",
    "bounced",
]
"""Lifecycle state of an interaction. Calls move initiated → ringing → queued → in_progress → completed (or end in
abandoned / no_answer / busy / failed / canceled); messages are received (inbound) or sent → delivered /
undelivered / bounced (outbound)."""

AwareDatetime = Annotated[datetime, Meta(tz=True, description="RFC 3339 timestamp with a time zone offset.")]
Seconds = Annotated[float, Meta(ge=0, le=31_536_000, description="A duration in seconds.")]
ShortText = Annotated[str, Meta(min_length=1, max_length=512)]
Source = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Platform the event came from, e.g. `native`, `twilio-voice`, `mailgun`.",
    ),
]
ExternalId = Annotated[str, Meta(min_length=1, max_length=512, description="The platform's own id for the contact.")]
