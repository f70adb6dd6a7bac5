"""The OpenAPI document says what errors really look like: every operation lists the problem responses it can give
(`application/problem+json`, the `Problem` schema), instead of Litestar's default 400 body that unify never sends."""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from schemas import Problem
from unify.http._problems import PROBLEM_MEDIA_TYPE

_WHY = {
    400: "Bad request: the problem names each invalid field or parameter.",
    401: "No valid API key (webhooks: the platform's signature or credentials failed; the raw body is kept).",
    403: "The API key lacks the scope this route needs.",
    404: "Nothing with this id (or no connector of this name).",
    409: "The request contradicts the current state (a vetoed merge, an undone undo, a decided suggestion).",
    413: "The body is larger than UNIFY_MAX_BODY_BYTES (imports: UNIFY_MAX_IMPORT_BYTES); its first bytes are kept.",
    415: "The body's content type is not one this route reads.",
    503: "The database is not reachable right now; retry after `Retry-After` seconds (the consistency audit: also "
    "`report-too-long`, a report past UNIFY_AUDIT_TIMEOUT_SECONDS, with no `Retry-After`).",
}
_METHODS = ("get", "put", "post", "delete", "patch")
_LOOKUPS = frozenset({"/v1/context", "/v1/stream"})  # routes naming a customer in the query (unknown: 404)


def _string_or_null(kind: OpenAPIType) -> Schema:
    return Schema(type=[kind, OpenAPIType.NULL])


PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="Problem",
    description=(Problem.__doc__ or "").strip(),
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": _string_or_null(OpenAPIType.STRING),
        "instance": _string_or_null(OpenAPIType.STRING),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Reference(ref="#/components/schemas/FieldError")),
        "raw_event_id": _string_or_null(OpenAPIType.INTEGER),
        "request_id": _string_or_null(OpenAPIType.STRING),
    },
)
FIELD_ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="FieldError",
    required=["field", "message"],
    properties={"field": Schema(type=OpenAPIType.STRING), "message": Schema(type=OpenAPIType.STRING)},
)


def _statuses(method: str, path: str, operation: Operation) -> list[int]:
    if path in ("/healthz", "/readyz"):
        return []
    webhook = path.startswith("/v1/webhooks/{")
    codes = {400, 401, 503}
    if not webhook:
        codes.add(403)  # webhooks need no API key, only the platform's proof
    if "{" in path or path in _LOOKUPS:
        codes.add(404)
    if method != "get":
        codes.add(409)
    if operation.request_body is not None or webhook:
        codes |= {413, 415}
    return sorted(codes)


def document_problems(app: Litestar) -> None:
    """Add the problem responses to every operation of the app's OpenAPI document (built once, then served)."""
    openapi = app.openapi_schema
    if openapi.components is not None:
        schemas = openapi.components.schemas if openapi.components.schemas is not None else {}
        schemas.setdefault("FieldError", FIELD_ERROR_SCHEMA)
        schemas["Problem"] = PROBLEM_SCHEMA
        openapi.components.schemas = schemas
    problem = OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Problem"))
    for path, item in (openapi.paths or {}).items():
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status in _statuses(method, path, operation):
                responses[str(status)] = OpenAPIResponse(
                    description=_WHY[status], content={PROBLEM_MEDIA_TYPE: problem}
                )
            operation.responses = responses
