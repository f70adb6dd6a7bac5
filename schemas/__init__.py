"""The shared contract of unify: msgspec Structs only, no I/O.

Every connector produces `InteractionEvent`s; every API body is defined here. `unify schema` writes them out as
JSON Schema, with each Struct's docstring as its description."""

from schemas._api import (
    ApiKey,
    Customer,
    CustomerIdentifier,
    FieldError,
    Health,
    IngestBatchResult,
    IngestOutcome,
    IngestResult,
    Interaction,
    Problem,
    Readiness,
    Scope,
)
from schemas._common import (
    VERIFICATION_ORDER,
    Channel,
    Direction,
    IdentifierKind,
    InteractionStatus,
    Verification,
)
from schemas._interaction import (
    Attachment,
    ChannelDetails,
    ChatDetails,
    CustomerParty,
    EmailDetails,
    Endpoint,
    Identifier,
    InteractionEvent,
    SmsDetails,
    VoiceDetails,
)
from schemas._privacy import (
    CustomerExport,
    ErasureCounts,
    ErasureReceipt,
    ErasureRequest,
    ExportedCustomer,
    ExportedIdentifier,
    ExportedInteraction,
)

__all__ = [
    "VERIFICATION_ORDER",
    "ApiKey",
    "Attachment",
    "Channel",
    "ChannelDetails",
    "ChatDetails",
    "Customer",
    "CustomerExport",
    "CustomerIdentifier",
    "CustomerParty",
    "Direction",
    "EmailDetails",
    "Endpoint",
    "ErasureCounts",
    "ErasureReceipt",
    "ErasureRequest",
    "ExportedCustomer",
    "ExportedIdentifier",
    "ExportedInteraction",
    "FieldError",
    "Health",
    "Identifier",
    "IdentifierKind",
    "IngestBatchResult",
    "IngestOutcome",
    "IngestResult",
    "Interaction",
    "InteractionEvent",
    "InteractionStatus",
    "Problem",
    "Readiness",
    "Scope",
    "SmsDetails",
    "Verification",
    "VoiceDetails",
]

SCHEMA_TYPES: tuple[type, ...] = (
    InteractionEvent,
    Interaction,
    IngestResult,
    IngestBatchResult,
    Customer,
    Problem,
    Health,
    Readiness,
    ApiKey,
    ErasureRequest,
    ErasureReceipt,
    CustomerExport,
)
"""The top-level types `unify schema` exports."""
