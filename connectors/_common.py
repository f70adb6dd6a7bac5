"""Small pieces every connector needs: reading fields, checking secrets, parsing platform timestamps."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest


def first_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Form/query pairs as a dict; when a name repeats, the first value counts."""
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def required(fields: Mapping[str, object], name: str, *, prefix: str = "") -> str:
    """A non-empty string field, or PayloadError naming it."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise PayloadError(f"`{name}` is missing", field=f"{prefix}{name}")
    if not isinstance(value, str):
        raise PayloadError(f"`{name}` must be a string", field=f"{prefix}{name}")
    return value


def optional_int(fields: Mapping[str, object], name: str, *, prefix: str = "") -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise PayloadError(
            f"`{name}` must be a whole number, not {str(value)[:40]!r}", field=f"{prefix}{name}"
        ) from None


def optional_float(fields: Mapping[str, object], name: str, *, prefix: str = "") -> float | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        raise PayloadError(f"`{name}` must be a number, not {str(value)[:40]!r}", field=f"{prefix}{name}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise PayloadError(f"`{name}` must be a finite number", field=f"{prefix}{name}")
    return number


def parse_iso_datetime(value: str, name: str, *, prefix: str = "") -> datetime:
    """An ISO 8601 / RFC 3339 timestamp; a value without an offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(f"`{name}` is not an ISO 8601 timestamp: {value[:40]!r}", field=f"{prefix}{name}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_datetime(value: object, name: str, *, prefix: str = "", millis: bool = False) -> datetime:
    try:
        number = float(str(value).strip())
        return datetime.fromtimestamp(number / 1000 if millis else number, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise PayloadError(f"`{name}` is not a Unix timestamp: {str(value)[:40]!r}", field=f"{prefix}{name}") from None


def require_secret(settings: ConnectorSettings, what: str = "secret") -> str:
    if not settings.secret:
        raise SignatureError(f"the connector has no {what} configured, so the request cannot be verified")
    return settings.secret


def same_secret(expected: str | bytes, presented: str | bytes) -> bool:
    """Constant-time comparison."""
    a = expected.encode() if isinstance(expected, str) else expected
    b = presented.encode() if isinstance(presented, str) else presented
    return hmac.compare_digest(a, b)


def check_basic_auth(request: WebhookRequest, settings: ConnectorSettings) -> None:
    """For platforms that do not sign their webhooks: HTTP basic auth in the URL the platform calls
    (`https://user:password@unify.example.com/v1/webhooks/postmark`)."""
    if not settings.basic_auth:
        raise SignatureError("the connector has no basic_auth (user:password) configured, so it cannot be verified")
    header = request.header("authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise SignatureError("HTTP basic authentication is required", field="authorization")
    try:
        presented = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the basic authentication header is malformed", field="authorization") from None
    if not same_secret(settings.basic_auth.encode(), presented):
        raise SignatureError("the basic authentication credentials are wrong", field="authorization")


def check_timestamp_fresh(when: datetime, request: WebhookRequest, settings: ConnectorSettings, name: str) -> None:
    skew = abs((request.received_at - when).total_seconds())
    if skew > settings.max_skew_seconds:
        raise SignatureError(
            f"the signed `{name}` is {int(skew)} s away from now (more than {settings.max_skew_seconds} s): "
            "stale or replayed",
            field=name,
        )


def chat_handle(platform: str, value: str) -> str:
    """Chat handles are namespaced by platform, so that visitor 42 of one platform is not visitor 42 of another."""
    return f"{platform}:{value.strip()}"
