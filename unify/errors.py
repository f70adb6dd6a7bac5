"""The one error tree of unify. Each error carries its HTTP status; `unify.http.problems` maps them once.

UnifyError
├── ConfigurationError          (startup; never reaches HTTP)
├── BadRequest            400   malformed body, wrong content type, failed validation
│   └── PayloadTooLarge   413
├── Unauthorized          401   missing or unknown API key
├── Forbidden             403   key lacks the scope
├── NotFound              404
├── Conflict              409   the request contradicts the current state (a vetoed merge, an undone undo)
├── ReportTooLong          503   a consistency report past UNIFY_AUDIT_TIMEOUT_SECONDS
└── ServiceUnavailable    503   database down or not migrated

`checked_instant` and `checked_text` turn what PostgreSQL cannot store (a time past its calendar, a NUL character)
into the BadRequest naming the field, before it reaches a statement.
"""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import FieldError

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""The instants a request may name: far beyond any contact center's records, and far enough from the calendar's ends
that a window added to them stays a date."""


class UnifyError(Exception):
    status = 500
    title = "Internal error"
    slug = "internal"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        raw_event_id: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.raw_event_id = raw_event_id


class ConfigurationError(UnifyError):
    title = "Configuration error"
    slug = "configuration"


class BadRequest(UnifyError):
    status = 400
    title = "Bad request"
    slug = "bad-request"


def checked_instant(field: str, moment: datetime, text: str | None = None) -> datetime:
    """`moment` when it lies within EARLIEST and LATEST, else the BadRequest naming `field` (`text`: as given)."""
    if not EARLIEST <= moment <= LATEST:
        message = (
            f"{text or moment.isoformat()!r} is out of range: it must lie within {EARLIEST:%Y-%m-%d} 00:00 UTC and "
            f"{LATEST:%Y-%m-%d} 00:00 UTC"
        )
        raise BadRequest(f"{field}: {message}", errors=[FieldError(field=field, message=message)])
    return moment


def checked_text(field: str, text: str | None) -> str | None:
    """`text` unless it holds a NUL character (which PostgreSQL's text cannot store): then the BadRequest naming
    `field`."""
    if text is not None and "\x00" in text:
        raise BadRequest(f"`{field}` contains a NUL character", errors=[FieldError(field=field, message="NUL")])
    return text


class UnsupportedMediaType(BadRequest):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class PayloadTooLarge(BadRequest):
    status = 413
    title = "Payload too large"
    slug = "payload-too-large"


class Unauthorized(UnifyError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(UnifyError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(UnifyError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(UnifyError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class ReportTooLong(UnifyError):
    """A report that ran past its time limit (stopped, nothing kept): narrower, or from the command line."""

    status = 503
    title = "Report took too long"
    slug = "report-too-long"


class ServiceUnavailable(UnifyError):
    status = 503
    title = "Service unavailable"
    slug = "unavailable"
