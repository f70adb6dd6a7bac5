"""The one error tree of unify. Each error carries its HTTP status; `unify.http.problems` maps them once.

UnifyError
├── ConfigurationError          (startup; never reaches HTTP)
├── BadRequest            400   malformed body, wrong content type, failed validation
│   └── PayloadTooLarge   413
├── Unauthorized          401   missing or unknown API key
├── Forbidden             403   key lacks the scope
├── NotFound              404
├── Conflict              409   the request contradicts the current state (a vetoed merge, an undone undo)
└── ServiceUnavailable    503   database down or not migrated
"""

from __future__ import annotations

from schemas import FieldError


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
