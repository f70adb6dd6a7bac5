"""What every connector is: a pure function from a platform's webhook request to interaction events.

A connector never touches the network, the database or a web framework. The service hands it a `WebhookRequest`
(exactly what arrived, plus the public URL the platform called) and the connector's `ConnectorSettings`; the
connector checks the platform's signature (`verify`) and turns the body into events (`parse`). Problems are raised
as `SignatureError` (→ 401) or `PayloadError` naming the field (→ 400)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol
from urllib.parse import unquote

from schemas import Channel, InteractionEvent


class ConnectorError(Exception):
    """Base of the errors a connector raises."""

    def __init__(self, message: str, *, field: str = "$") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class SignatureError(ConnectorError):
    """The request did not prove it came from the platform (bad, missing, stale or replayed signature)."""


class PayloadError(ConnectorError):
    """The body is not what the platform sends: `field` names the part that is wrong."""


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook delivery as it arrived.

    `url` is the URL the platform called, rebuilt from the configured public base URL (services sit behind
    proxies), path and query string; signatures over a URL use it. Header names are lower-case."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime
    query: Sequence[tuple[str, str]] = ()

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case ("" when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form(self) -> list[tuple[str, str]]:
        """The body as `application/x-www-form-urlencoded` pairs, in order (UTF-8; invalid bytes → PayloadError).
        Parsed once per request: the signature check and the parser both read it."""
        cached = self.__dict__.get("_form")
        if cached is None:
            cached = self.__dict__["_form"] = self._parse_form()
        return list(cached)

    def _parse_form(self) -> list[tuple[str, str]]:
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"the form body is not valid UTF-8 (byte {exc.start})") from None
        try:
            return form_pairs(text)
        except ValueError as exc:
            raise PayloadError(f"the form body is malformed: {exc}") from None


MAX_FORM_FIELDS = 10_000


def form_pairs(text: str) -> list[tuple[str, str]]:
    """`application/x-www-form-urlencoded` text as (name, value) pairs, in order: what
    `urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_FORM_FIELDS)`
    returns (and the same ValueError for a field without `=` or too many fields; "" gives no pairs), without
    unquoting the names and values that need none (most of them; this runs for every form webhook)."""
    if not text:
        return []
    if text.count("&") + 1 > MAX_FORM_FIELDS:
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for field_text in text.split("&"):
        name, equals, value = field_text.partition("=")
        if not equals:
            raise ValueError(f"bad query field: {field_text!r}")
        pairs.append((_form_unquote(name), _form_unquote(value)))
    return pairs


def _form_unquote(text: str) -> str:
    if "%" in text:
        return unquote(text.replace("+", " "), encoding="utf-8", errors="replace")
    return text.replace("+", " ") if "+" in text else text


@dataclass(frozen=True)
class ConnectorSettings:
    """Per-connector settings, kept in the settings table (`unify connectors set …`).

    - `secret`: the platform's signing secret / auth token / signing key.
    - `basic_auth`: `user:password` required on the URL for platforms that do not sign (Postmark, SendGrid).
    - `default_region`: region for phone numbers written without a country code.
    - `max_skew_seconds`: how old (or how far in the future) a signed timestamp may be.
    - `timezone`: IANA zone of timestamps that carry none (CDR CSV files).
    - `verify`: False only for local experiments; then signatures are not checked."""

    secret: str | None = None
    basic_auth: str | None = None
    default_region: str = "US"
    public_base_url: str | None = None
    max_skew_seconds: int = 300
    timezone: str = "UTC"
    verify: bool = True
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fragment:
    """One part of a message the platform split (a concatenated SMS). The service keeps parts until all `total`
    have arrived, in any order, then calls the connector's `assemble` with them sorted by `index`."""

    group: str
    index: int
    total: int
    text: str
    event: InteractionEvent


@dataclass(frozen=True)
class Parsed:
    """What a delivery contained: whole events, and parts of split messages."""

    events: list[InteractionEvent] = field(default_factory=list)
    fragments: list[Fragment] = field(default_factory=list)
    replay_token: str | None = None
    """A value the platform never sends twice (Mailgun's `token`): the service rejects a second delivery of it."""


@dataclass(frozen=True)
class Reply:
    """What the platform expects back on success."""

    status: int = 200
    content_type: str = "application/json"
    body: bytes = b'{"status":"ok"}'


class Connector(Protocol):
    """A platform connector. Implementations are modules' singletons registered in `connectors.registry`."""

    name: ClassVar[str]
    channel: ClassVar[Channel]
    reply: ClassVar[Reply]

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        """Raise SignatureError unless the request is proven to come from the platform."""
        ...

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        """Turn the body into events (and fragments). Raise PayloadError naming the field that is wrong."""
        ...

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        """Join all parts of one split message (sorted by index) into one event."""
        ...
