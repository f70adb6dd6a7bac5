"""`/v1/webhooks/{connector}`: platform webhooks, verified by the platform's own signature (no API key)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import structlog
from litestar import Controller, Request, Response, get, route
from litestar.params import FromPath

from connectors.registry import connector_names
from unify.http._body import read_delivery
from unify.webhooks import LiveRequest, ingest_webhook


class WebhookController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]

    @get("/", summary="List the connectors a platform can deliver to", opt={"scope": "ingest"})
    async def list_connectors(self) -> list[str]:
        return connector_names()

    @route(
        "/{connector:str}",
        http_method=["POST", "GET"],
        summary="Receive a platform webhook",
        description=(
            "Dispatches to the named connector (`twilio-voice`, `amazon-connect`, `cdr-csv`, `twilio-sms`, "
            "`vonage-sms`, `email-mime`, `mailgun`, `postmark`, `sendgrid`, `chat`, `intercom`, "
            "`sunshine-conversations`, `chatwoot`). The raw body is stored first. A failed signature answers 401 "
            "(raw kept, flagged unverified); a body the platform would not send answers 400 naming the field (raw "
            "kept); success answers what the platform expects (TwiML for Twilio). Unknown connector: 404."
        ),
        status_code=200,
    )
    async def receive(self, request: Request, connector: FromPath[str]) -> Response[bytes]:
        state = request.app.state
        raw = await read_delivery(request, connector, state.settings.max_body_bytes)
        scope = request.scope
        query_string = scope.get("query_string", b"").decode("latin-1")
        # ASGI header names are lower-case already; read them straight from the scope (this path is hot).
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        live = LiveRequest(
            method=scope["method"],
            base_url=f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}",
            path=scope["path"],
            query_string=query_string,
            query=parse_qsl(query_string, keep_blank_values=True) if query_string else [],
            headers=headers,
        )
        reply, result = await ingest_webhook(
            state.pool, state.connector_settings, connector, live, raw, state.ingest_options
        )
        structlog.contextvars.bind_contextvars(
            connector=connector, raw_event_id=result.raw_event_id, created=result.created, updated=result.updated
        )
        return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
