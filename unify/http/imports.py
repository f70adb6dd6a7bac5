"""`/v1/import`: a bulk file of native events (JSONL) or CRM contacts (CSV), loaded like `unify import FILE`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from litestar import Request, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import QueryParameter

from schemas import ImportReport
from unify.http._body import read_delivery
from unify.importer import ROUTE, import_delivery


@dataclass
class _ImportOperation(Operation):
    """Documents the body the handler reads itself (raw bytes, so that every body is kept)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description=(
                "JSONL: one interaction event per line. CSV: contacts with a header row, read through the `map` "
                "parameter. At most UNIFY_MAX_IMPORT_BYTES (32 MiB); larger files go through `unify import FILE`."
            ),
            content={
                media: OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, description="One InteractionEvent (JSON) per line.")
                )
                for media in ("application/x-ndjson", "application/jsonl")
            }
            | {"text/csv": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description="A header row first."))},
        )


@post(
    "/v1/import",
    opt={"scope": "ingest"},
    operation_class=_ImportOperation,
    status_code=200,
    tags=["interactions"],
    summary="Import a file of events (JSONL) or contacts (CSV)",
    description=(
        "Loads the body chunk by chunk: each chunk kept raw, its events applied as `POST /v1/interactions` would "
        "and its identities linked by the same rule. Invalid lines are reported by line number (kept raw, the rest "
        "imported). Sending the same body again (same mapping) skips what was committed, so a retry after a "
        "timeout imports nothing twice. CSV contacts link their identifiers at `verification` (default "
        "`authenticated`: the business's own records)."
    ),
)
async def import_file_handler(
    request: Request,
    mapping: Annotated[
        str | None,
        QueryParameter(
            name="map",
            description="CSV: KIND=COLUMN pairs, e.g. `account=AccountNo,email=Email,phone=Mobile,name=FullName`.",
        ),
    ] = None,
    verification: Annotated[
        str | None,
        QueryParameter(
            description="CSV: how far the contacts are trusted (`unverified` … `authenticated`, the default)."
        ),
    ] = None,
    name: Annotated[str | None, QueryParameter(description="The file's name, recorded as `import:<name>`.")] = None,
) -> ImportReport:
    state = request.app.state
    raw = await read_delivery(request, ROUTE, state.settings.max_import_bytes)
    report = await import_delivery(
        state.pool, raw, name=name, mapping=mapping, verification=verification, options=state.ingest_options
    )
    structlog.contextvars.bind_contextvars(
        import_id=str(report.import_id), imported=report.imported, invalid=report.invalid
    )
    return report
