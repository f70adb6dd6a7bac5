"""Agent context endpoints: `GET /v1/context`, a customer's timeline, promises, and the context access log.

Plain route handlers (like unify/http/identity.py): `/v1/customers/{id}/…` shares its prefix with
`CustomerController`, so `CONTEXT_HANDLERS` are listed after it. The context and timeline documents are assembled
as JSON by PostgreSQL and sent as they come; their shapes are `schemas.Context` and `schemas.Timeline`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from schemas import (
    Context,
    ContextAccess,
    FieldError,
    IdentifierKind,
    NewPromise,
    Promise,
    PromiseUpdate,
    Timeline,
    Verification,
)
from unify.context import (
    MAX_TIMELINE,
    list_context_access,
    list_promises,
    read_context,
    read_timeline,
    update_promise,
)
from unify.context import create_promise as record_promise
from unify.errors import BadRequest, NotFound, checked_instant, checked_text

_JSON = "application/json"
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_TIMELINE, description="Timeline entries (1–200).")]
Vouched = Annotated[
    Verification | None,
    QueryParameter(
        description=(
            "How far the desktop trusts the current contact: `unverified` (default for an identifier: caller ID, "
            "a From header), `carrier_attested` (STIR/SHAKEN A), `signed` (DKIM), `authenticated` (PIN, login; "
            "default for customer_id). An `unverified` lookup sees no bodies and masked identifiers unless "
            "UNIFY_CONTEXT_UNVERIFIED_VIEW=full."
        )
    ),
]


def _lookup(
    phone: str | None, email: str | None, chat: str | None, account: str | None, customer_id: UUID | None
) -> tuple[IdentifierKind | None, str | None]:
    given: list[tuple[IdentifierKind, str]] = [
        (kind, value)
        for kind, value in (("phone", phone), ("email", email), ("chat", chat), ("account", account))
        if value is not None
    ]
    count = len(given) + (customer_id is not None)
    if count != 1:
        raise BadRequest(
            "give exactly one of phone, email, chat, account, customer_id" + (f" (got {count})" if count else ""),
            errors=[FieldError(field="query", message="one lookup parameter")],
        )
    if not given:
        return None, None
    kind, value = given[0]
    if not value.strip():
        raise BadRequest(f"`{kind}` is empty", errors=[FieldError(field=kind, message="empty")])
    if "\x00" in value:
        raise BadRequest(
            f"`{kind}` contains a NUL character", errors=[FieldError(field=kind, message="contains a NUL character")]
        )
    return kind, value


@get(
    "/v1/context",
    opt={"scope": "context:read"},
    tags=["context"],
    summary="Who is this and what happened before: the whole context for an agent, in one answer",
    description=(
        "Look up by exactly one of `phone`, `email`, `chat` (`platform:handle`), `account` or `customer_id`. The "
        "value is normalized as ingest normalizes it, so `(415) 555-0100` finds `+14155550100`. An unknown or junk "
        "identifier answers 200 with `match.status` `unknown` and an empty context; a shared one `ambiguous` with "
        "candidates. Every read is recorded in the access log."
    ),
)
async def context_route(
    request: Request,
    phone: FromQuery[str | None] = None,
    email: FromQuery[str | None] = None,
    chat: FromQuery[str | None] = None,
    account: FromQuery[str | None] = None,
    customer_id: FromQuery[UUID | None] = None,
    verification: Vouched = None,
    limit: Limit = 20,
    interaction_id: Annotated[
        UUID | None,
        QueryParameter(
            description=(
                "The interaction in front of the agent (its `interaction_id`, e.g. from the stream), if the desktop "
                "knows it: `repeat` counts the contacts before the contact it belongs to. Without it, the customer's "
                "latest contact is taken for the current one while its conversation is live (a call leg not ended, "
                "a message of the last 15 minutes), else the lookup itself is the new contact."
            )
        ),
    ] = None,
) -> Response[Context]:
    kind, value = _lookup(phone, email, chat, account, customer_id)
    state = request.app.state
    vouched: Verification = verification or ("authenticated" if customer_id is not None else "unverified")
    async with state.context_pool.acquire() as conn:
        read = await read_context(
            conn,
            kind=kind,
            value=value,
            customer_id=customer_id,
            verification=vouched,
            limit=limit,
            api_key_id=request.state.api_key_id,
            policy=state.context_policy,
            identity=state.ingest_options.identity,
            default_region=state.settings.default_region,
            current=interaction_id,
        )
    if read.status == "missing":
        raise NotFound(f"no customer with id {customer_id}")
    return Response(content=read.document, media_type=_JSON)


@get(
    "/v1/customers/{customer_id:uuid}/timeline",
    opt={"scope": "context:read"},
    tags=["context"],
    summary="Page further back through a customer's history",
    description=(
        "Newest first across every channel. Pass the `next_cursor` of the context or of the previous page as "
        "`cursor`: the pages after a masked answer are masked too. Recorded in the access log."
    ),
)
async def timeline_route(
    request: Request,
    customer_id: FromPath[UUID],
    cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page.")] = None,
    limit: Limit = 50,
    verification: Annotated[
        Verification | None,
        QueryParameter(
            description=(
                "How far the desktop trusts the contact: default `authenticated` (the agent chose the customer); "
                "`unverified` shows no bodies. The pages after a masked answer (a cursor ending in `~masked`) are "
                "masked whatever this says."
            )
        ),
    ] = None,
) -> Response[Timeline]:
    state = request.app.state
    async with state.context_pool.acquire() as conn:
        page = await read_timeline(
            conn,
            customer_id,
            cursor=cursor,
            limit=limit,
            api_key_id=request.state.api_key_id,
            verification=verification or "authenticated",
            policy=state.context_policy,
        )
    cursor_json = b"null" if page.next_cursor is None else b'"' + page.next_cursor.encode() + b'"'
    body = b'{"customer_id":"%s","entries":%s,"next_cursor":%s}' % (
        str(page.customer_id).encode(),
        page.entries,
        cursor_json,
    )
    return Response(content=body, media_type=_JSON)


@post(
    "/v1/customers/{customer_id:uuid}/promises",
    opt={"scope": "context:write"},
    tags=["context"],
    summary="Record a promise made to the customer",
    description="What was promised, by when, on which channel, by which agent. It shows in the context until kept.",
)
async def create_promise_route(request: Request, customer_id: FromPath[UUID], data: JSONBody[NewPromise]) -> Promise:
    checked_text("text", data.text)
    checked_text("agent", data.agent)
    checked_instant("due_at", data.due_at)
    async with request.app.state.pool.acquire() as conn:
        return await record_promise(conn, customer_id, data)


@patch(
    "/v1/customers/{customer_id:uuid}/promises/{promise_id:uuid}",
    opt={"scope": "context:write"},
    tags=["context"],
    summary="Mark a promise kept or broken (or open again)",
)
async def update_promise_route(
    request: Request, customer_id: FromPath[UUID], promise_id: FromPath[UUID], data: JSONBody[PromiseUpdate]
) -> Promise:
    checked_text("note", data.note)
    checked_text("actor", data.actor)
    actor = data.actor.strip() if data.actor and data.actor.strip() else f"api-key:{request.state.api_key_id}"
    async with request.app.state.pool.acquire() as conn:
        return await update_promise(conn, customer_id, promise_id, data, actor)


@get(
    "/v1/customers/{customer_id:uuid}/promises",
    opt={"scope": "context:read"},
    tags=["context"],
    summary="Every promise made to the customer: overdue first, then open by due time, then resolved",
)
async def list_promises_route(request: Request, customer_id: FromPath[UUID]) -> list[Promise]:
    async with request.app.state.pool.acquire() as conn:
        return await list_promises(conn, customer_id)


@get(
    "/v1/context/access-log",
    opt={"scope": "admin"},
    tags=["context"],
    summary="Who read whose context: every context and timeline read, newest first",
)
async def access_log_route(
    request: Request,
    customer_id: FromQuery[UUID | None] = None,
    api_key_id: FromQuery[UUID | None] = None,
    since: Annotated[datetime | None, QueryParameter(name="from")] = None,
    until: Annotated[datetime | None, QueryParameter(name="to")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 100,
) -> list[ContextAccess]:
    for name, moment in (("from", since), ("to", until)):
        if moment is not None and moment.tzinfo is None:
            raise BadRequest(
                f"`{name}` needs a time zone offset, e.g. 2026-11-30T09:00:00Z",
                errors=[FieldError(field=name, message="no time zone offset")],
            )
        if moment is not None:
            checked_instant(name, moment)
    async with request.app.state.pool.acquire() as conn:
        return await list_context_access(
            conn, customer_id=customer_id, api_key_id=api_key_id, since=since, until=until, limit=limit
        )


CONTEXT_HANDLERS = [
    context_route,
    timeline_route,
    create_promise_route,
    update_promise_route,
    list_promises_route,
    access_log_route,
]
