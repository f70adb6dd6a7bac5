"""`/v1/interactions`: native events in the shared schema, one or a batch; and reading them back."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import structlog
from litestar import Controller, Request, Response, get, post
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
)
from litestar.params import FromPath

from schemas import IngestBatchResult, IngestResult, Interaction
from unify.errors import NotFound
from unify.http._body import read_delivery
from unify.ingest import ingest_native
from unify.interactions import get_interaction


@dataclass
class _IngestOperation(Operation):
    """Documents the body the handler reads itself (it reads raw bytes so that every body is kept)."""

    def __post_init__(self) -> None:
        event = Reference(ref="#/components/schemas/InteractionEvent")
        self.request_body = RequestBody(
            required=True,
            description="One interaction event, or an array of up to UNIFY_MAX_BATCH events.",
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(one_of=[event, Schema(type=OpenAPIType.ARRAY, items=event)])
                )
            },
        )
        created = (self.responses or {}).get("201")
        if isinstance(created, OpenAPIResponse):  # a duplicate, an update, or a batch answer 200 with the same shapes
            self.responses = {
                **(self.responses or {}),
                "200": OpenAPIResponse(
                    description="A single event that was a duplicate or an update, or a batch (one result per event).",
                    content=created.content,
                ),
            }


class InteractionController(Controller):
    path = "/v1/interactions"
    tags = ["interactions"]

    @post(
        "/",
        opt={"scope": "ingest"},
        operation_class=_IngestOperation,
        status_code=201,
        summary="Ingest one interaction event or a batch",
        description=(
            "Stores the raw body, then applies each event by its key `(source, external_id)`. A single event "
            "answers 201 when it created an interaction and 200 when it was a duplicate or an update; a batch "
            "answers 200 with one result per event. 2xx means committed. Errors are problem+json naming the field; "
            "the raw body is kept with its error (`raw_event_id`)."
        ),
    )
    async def ingest(self, request: Request) -> Response[IngestResult | IngestBatchResult]:
        settings = request.app.state.settings
        raw = await read_delivery(request, "native", settings.max_body_bytes)
        result, is_batch = await ingest_native(
            request.app.state.pool, raw, max_batch=settings.max_batch, options=request.app.state.ingest_options
        )
        if is_batch:
            structlog.contextvars.bind_contextvars(raw_event_id=result.raw_event_id, events=len(result.results))
            return Response(result, status_code=200)
        single = result.results[0]
        structlog.contextvars.bind_contextvars(
            raw_event_id=result.raw_event_id,
            events=1,
            interaction_id=str(single.interaction_id),
            outcome=single.outcome,
        )
        return Response(single, status_code=201 if single.outcome == "created" else 200)

    @get("/{interaction_id:uuid}", opt={"scope": "context:read"}, summary="Read one interaction")
    async def read(self, request: Request, interaction_id: FromPath[UUID]) -> Interaction:
        async with request.app.state.pool.acquire() as conn:
            interaction = await get_interaction(conn, interaction_id)
        if interaction is None:
            raise NotFound(f"no interaction with id {interaction_id}")
        return interaction
