"""Identity endpoints: why identifiers belong to a customer, merges and undo, detach, suggestions, lookups.

Reading needs scope `context:read`; every change needs `admin` and records who (the `actor` given, else the API
key) and why. Plain route handlers, not a Controller: `/v1/customers/{id}/…` shares its prefix with
`CustomerController` (see unify/http/privacy.py); list `IDENTITY_HANDLERS` after it."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from schemas import (
    CustomerIdentity,
    DetachRequest,
    DetachResult,
    IdentifierKind,
    IdentityLookup,
    MergeRequest,
    MergeResult,
    MergeSuggestion,
    SuggestionDecision,
    SuggestionStatus,
    UndoRequest,
)
from unify.errors import BadRequest, NotFound
from unify.identity.explain import explain_customer, lookup_identifier
from unify.identity.fuzzy import FuzzyScanReport, scan_fuzzy_suggestions
from unify.identity.merges import decide_suggestion, detach_identifier, list_suggestions, merge_customers, undo_merge


def _actor(request: Request, given: str | None) -> str:
    return given.strip() if given and given.strip() else f"api-key:{request.state.api_key_id}"


def _limits(request: Request) -> dict[str, int]:
    return dict(request.app.state.ingest_options.identity.limits)


@get(
    "/v1/customers/{customer_id:uuid}/identity",
    opt={"scope": "context:read"},
    tags=["identity"],
    summary="Explain a customer: every identifier and why it is linked, the merge history, open suggestions",
    description=(
        "For each identifier: kind, normalized value, verification, first and last seen, whether it is shared, "
        "and the evidence that linked it (the event and rule, or the person who moved it); when it came with a "
        "merged customer, the merge. A customer id that was merged into another answers for the whole group."
    ),
)
async def explain_customer_route(request: Request, customer_id: FromPath[UUID]) -> CustomerIdentity:
    async with request.app.state.pool.acquire() as conn:
        identity = await explain_customer(conn, customer_id)
    if identity is None:
        raise NotFound(f"no customer with id {customer_id}")
    return identity


@post(
    "/v1/customers/{customer_id:uuid}/merge",
    opt={"scope": "admin"},
    status_code=200,
    tags=["identity"],
    summary="Merge another customer into this one",
    description=(
        "Records the merge (who, why); nothing is deleted and `POST /v1/merges/{id}/undo` reverses it. 409 when "
        "the two are already one customer or the merge would break a per-kind limit (UNIFY_IDENTIFIER_LIMITS)."
    ),
)
async def merge_customers_route(
    request: Request, customer_id: FromPath[UUID], data: JSONBody[MergeRequest]
) -> MergeResult:
    if data.customer_id == customer_id:
        raise BadRequest("a customer cannot be merged into itself")
    return await merge_customers(
        request.app.state.pool,
        customer_id,
        data.customer_id,
        actor=_actor(request, data.actor),
        reason=data.reason,
        limits=_limits(request),
    )


@post(
    "/v1/merges/{merge_id:uuid}/undo",
    opt={"scope": "admin"},
    status_code=200,
    tags=["identity"],
    summary="Undo a merge",
    description=(
        "Both customers come back exactly as they were before the merge, each with whatever arrived since on its "
        "side (identifiers first seen with one of its identifiers). 409 if the merge was already undone."
    ),
)
async def undo_merge_route(request: Request, merge_id: FromPath[UUID], data: JSONBody[UndoRequest]) -> MergeResult:
    return await undo_merge(request.app.state.pool, merge_id, actor=_actor(request, data.actor), reason=data.reason)


@post(
    "/v1/identifiers/{identifier_id:int}/detach",
    opt={"scope": "admin"},
    status_code=200,
    tags=["identity"],
    summary="Move an identifier out of its customer",
    description=(
        "Into `to_customer_id`, or a new customer of its own. The identifier's interactions follow it. 409 when "
        "the target already holds the most identifiers of that kind allowed."
    ),
)
async def detach_identifier_route(
    request: Request, identifier_id: FromPath[int], data: JSONBody[DetachRequest]
) -> DetachResult:
    if not 0 < identifier_id < 2**63:  # ids are bigint: anything else names no identifier (not a database error)
        raise NotFound(f"no identifier with id {identifier_id}")
    return await detach_identifier(
        request.app.state.pool,
        identifier_id,
        actor=_actor(request, data.actor),
        reason=data.reason,
        to_customer_id=data.to_customer_id,
        limits=_limits(request),
    )


@get(
    "/v1/identity/suggestions",
    opt={"scope": "context:read"},
    tags=["identity"],
    summary="Merge suggestions, newest first",
    description=(
        "Default: the open ones (`pending` and `conflict`). Page with `before` = the last id of a page. Open "
        "suggestions whose customers were merged meanwhile are left out."
    ),
)
async def list_suggestions_route(
    request: Request,
    status: Annotated[
        SuggestionStatus | Literal["open", "all"],
        QueryParameter(description="`open` (pending and conflict, the default), `all`, or one status."),
    ] = "open",
    kind: Annotated[Literal["evidence", "fuzzy"] | None, QueryParameter(description="Only this kind.")] = None,
    before: Annotated[UUID | None, QueryParameter(description="The last id of the previous page.")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500, description="Page size.")] = 100,
) -> list[MergeSuggestion]:
    statuses: list[SuggestionStatus] | None = {"open": ["pending", "conflict"], "all": None}.get(status, [status])
    async with request.app.state.pool.acquire() as conn:
        return await list_suggestions(conn, statuses=statuses, kind=kind, before=before, limit=limit)


@post(
    "/v1/identity/suggestions/{suggestion_id:uuid}/accept",
    opt={"scope": "admin"},
    status_code=200,
    tags=["identity"],
    summary="Accept a merge suggestion: merge its two customers",
)
async def accept_suggestion_route(
    request: Request, suggestion_id: FromPath[UUID], data: JSONBody[SuggestionDecision]
) -> MergeSuggestion:
    return await decide_suggestion(
        request.app.state.pool,
        suggestion_id,
        accept=True,
        actor=_actor(request, data.actor),
        reason=data.reason,
        limits=_limits(request),
    )


@post(
    "/v1/identity/suggestions/{suggestion_id:uuid}/reject",
    opt={"scope": "admin"},
    status_code=200,
    tags=["identity"],
    summary="Reject a merge suggestion",
)
async def reject_suggestion_route(
    request: Request, suggestion_id: FromPath[UUID], data: JSONBody[SuggestionDecision]
) -> MergeSuggestion:
    return await decide_suggestion(
        request.app.state.pool,
        suggestion_id,
        accept=False,
        actor=_actor(request, data.actor),
        reason=data.reason,
        limits=_limits(request),
    )


@post(
    "/v1/identity/suggestions/scan",
    opt={"scope": "admin"},
    status_code=200,
    tags=["identity"],
    summary="Look for customers with similar names and suggest merging them (never merges)",
    description=(
        "Compares root customers whose names share trigrams, scores names with rapidfuzz together with shared "
        "attributes (email local part, phone number under another country code, thread), and writes a `fuzzy` "
        "suggestion for each pair at or above `min_score` (default UNIFY_FUZZY_MIN_SCORE). Same as "
        "`unify identity scan`."
    ),
)
async def scan_suggestions_route(
    request: Request,
    min_score: Annotated[
        float | None, QueryParameter(gt=0, le=1, description="Lowest score suggested (default UNIFY_FUZZY_MIN_SCORE).")
    ] = None,
) -> FuzzyScanReport:
    settings = request.app.state.settings
    async with request.app.state.pool.acquire() as conn:
        return await scan_fuzzy_suggestions(
            conn,
            min_score=settings.fuzzy_min_score if min_score is None else min_score,
            limits=_limits(request),
        )


_LOOKUP_KINDS: tuple[IdentifierKind, ...] = ("phone", "email", "chat", "account", "external")


@get(
    "/v1/identity/lookup",
    opt={"scope": "context:read"},
    tags=["identity"],
    summary="Who an identifier belongs to",
    description=(
        "Give exactly one of `phone`, `email`, `chat`, `account`, `external`; the value is normalized as ingest "
        "normalizes it. `found` names one customer; `ambiguous` (a shared identifier) lists the candidates and "
        "picks none; `unknown` for a value never seen or one that never links (anonymous, no-reply)."
    ),
)
async def lookup_identifier_route(
    request: Request,
    phone: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    chat: FromQuery[str | None] = None,
    account: FromQuery[str | None] = None,
    external: FromQuery[str | None] = None,
) -> IdentityLookup:
    given = {"phone": phone, "email": email, "chat": chat, "account": account, "external": external}
    present = [(kind, value) for kind, value in given.items() if value is not None]
    if len(present) != 1:
        raise BadRequest(f"give exactly one of the query parameters {', '.join(_LOOKUP_KINDS)}")
    kind, value = present[0]
    options = request.app.state.ingest_options
    async with request.app.state.pool.acquire() as conn:
        return await lookup_identifier(
            conn,
            kind,
            value,
            default_region=options.default_region,
            policy=options.identity,  # type: ignore[arg-type]
        )


IDENTITY_HANDLERS = (
    explain_customer_route,
    merge_customers_route,
    undo_merge_route,
    detach_identifier_route,
    list_suggestions_route,
    scan_suggestions_route,
    accept_suggestion_route,
    reject_suggestion_route,
    lookup_identifier_route,
)
"""The identity routes, to be listed after `CustomerController` (see the module docstring)."""
