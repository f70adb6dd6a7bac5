"""One mapping from errors to RFC 9457 problem details (`application/problem+json`)."""

from __future__ import annotations

import asyncpg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from schemas import FieldError, Problem
from unify.errors import BadRequest, ServiceUnavailable, UnifyError
from unify.store import DATABASE_UNREACHABLE

log = structlog.get_logger("unify.http")
PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_BASE = "https://unify.dev/problems/"

# Errors that mean "the database cannot be reached right now": the client should retry.
DATABASE_DOWN = (*DATABASE_UNREACHABLE, asyncpg.TooManyConnectionsError, TimeoutError)


def _request_id(request: Request) -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")


def _problem(request: Request, problem: Problem, headers: dict[str, str] | None = None) -> Response[Problem]:
    return Response(problem, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def unify_error_handler(request: Request, exc: UnifyError) -> Response[Problem]:
    problem = Problem(
        type=_TYPE_BASE + exc.slug,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        raw_event_id=exc.raw_event_id,
        request_id=_request_id(request),
    )
    headers = {"Retry-After": "5"} if isinstance(exc, ServiceUnavailable) else None
    if exc.status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="unify"'}
    return _problem(request, problem, headers)


def http_exception_handler(request: Request, exc: HTTPException) -> Response[Problem]:
    errors: list[FieldError] = []
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                errors.append(FieldError(field=str(item.get("key", "$")), message=str(item.get("message", ""))))
    problem = Problem(
        type=_TYPE_BASE + str(exc.status_code),
        title=exc.detail if exc.status_code < 500 else "Internal error",
        status=exc.status_code,
        detail=exc.detail,
        instance=request.url.path,
        errors=errors,
        request_id=_request_id(request),
    )
    return _problem(request, problem, exc.headers)


UNSTORABLE = (
    asyncpg.CharacterNotInRepertoireError,
    asyncpg.UntranslatableCharacterError,
    asyncpg.DatetimeFieldOverflowError,
)
"""A value PostgreSQL cannot store (a NUL character, a time past its calendar) that no check before the statement
caught: the client's input, so a 400, not a server error."""


def unexpected_error_handler(request: Request, exc: Exception) -> Response[Problem]:
    if isinstance(exc, UNSTORABLE):
        log.warning("unstorable_input", error=type(exc).__name__, detail=str(exc))
        return unify_error_handler(
            request,
            BadRequest(f"a value in the request cannot be stored: {exc} (a NUL character, or a time out of range?)"),
        )
    if isinstance(exc, DATABASE_DOWN):
        log.warning("database_unavailable", error=type(exc).__name__)
        return unify_error_handler(
            request, ServiceUnavailable("the database is not reachable right now; retry shortly")
        )
    log.exception("unhandled_error", error=type(exc).__name__)
    problem = Problem(
        type=_TYPE_BASE + "internal",
        title="Internal error",
        status=500,
        detail="an unexpected error occurred; the request id identifies it in the logs",
        instance=request.url.path,
        request_id=_request_id(request),
    )
    return _problem(request, problem)


EXCEPTION_HANDLERS = {
    UnifyError: unify_error_handler,
    HTTPException: http_exception_handler,
    Exception: unexpected_error_handler,
}
