"""What an audit is asked for: the range and filters, read from query parameters or command-line options, with a
400 that names the parameter when one is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

from schemas import AuditFormat, Channel, FieldError
from unify.errors import BadRequest, checked_instant

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_FILTER_LENGTH = 512
"""As long as a reason or queue may be (ShortText): any value the records hold can be asked for."""
CHANNELS: tuple[Channel, ...] = get_args(Channel)
FORMATS: tuple[AuditFormat, ...] = get_args(AuditFormat)
MEDIA_TYPES: dict[AuditFormat, str] = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class AuditRequest:
    """The range [`start`, `end`) in UTC and the optional filters."""

    start: datetime
    end: datetime
    channel: Channel | None = None
    reason: str | None = None
    queue: str | None = None


def _bad(parameter: str, message: str) -> BadRequest:
    return BadRequest(f"{parameter}: {message}", errors=[FieldError(field=parameter, message=message)])


def parse_instant(parameter: str, text: str, *, end_of_day: bool) -> datetime:
    """A date (`2026-10-31`, UTC; as `to` it means the end of that day) or an RFC 3339 time with an offset."""
    text = text.strip()
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
            if end_of_day:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                raise _bad(parameter, f"{text!r} has no UTC offset (add Z or +hh:mm, or give a date)")
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _bad(parameter, f"{text!r} is not a date (YYYY-MM-DD) or an RFC 3339 time") from None
    return checked_instant(parameter, moment, text)


def _filter(parameter: str, text: str | None) -> str | None:
    """A reason or queue filter: surrounding spaces dropped, empty meaning none, no control characters."""
    text = text.strip() if text else None
    if not text:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise _bad(parameter, "contains a control character")
    if len(text) > MAX_FILTER_LENGTH:
        raise _bad(parameter, f"longer than {MAX_FILTER_LENGTH} characters")
    return text


def audit_request(
    start: str | None = None,
    end: str | None = None,
    *,
    channel: str | None = None,
    reason: str | None = None,
    queue: str | None = None,
    now: datetime | None = None,
) -> AuditRequest:
    """Check and complete what was asked: `to` defaults to now, `from` to 30 days before `to`; `from` must be
    before `to` and the range at most a year. Empty filters are no filters."""
    now = now or datetime.now(UTC)
    stop = parse_instant("to", end, end_of_day=True) if end else now
    begin = parse_instant("from", start, end_of_day=False) if start else stop - timedelta(days=DEFAULT_DAYS)
    if begin >= stop:
        raise _bad("from", f"from ({begin.isoformat()}) must be before to ({stop.isoformat()})")
    if stop - begin > timedelta(days=MAX_DAYS):
        raise _bad("from", f"the range may span at most {MAX_DAYS} days")
    if channel is not None and channel.strip() == "":
        channel = None
    if channel is not None and channel not in CHANNELS:
        raise _bad("channel", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    return AuditRequest(begin, stop, channel, _filter("reason", reason), _filter("queue", queue))  # type: ignore[arg-type]


def output_format(requested: str | None, accept: str | None = None) -> AuditFormat:
    """`format=` wins; else the Accept header (text/csv, text/html); else JSON."""
    if requested:
        if requested not in FORMATS:
            raise _bad("format", f"{requested!r} is not one of {', '.join(FORMATS)}")
        return requested  # type: ignore[return-value]
    accept = (accept or "").lower()
    if "text/csv" in accept:
        return "csv"
    if "text/html" in accept:
        return "html"
    return "json"
