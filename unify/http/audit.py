"""`GET /v1/audit/consistency`: the cross-channel consistency audit, as JSON, CSV or a self-contained HTML page.

Scope `audit:read`. The handler only reads parameters and writes the report out; unify.audit computes it (the same
function `unify audit` runs)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from schemas import ConsistencyReport
from unify.audit import (
    audit_request,
    consistency_report,
    output_format,
    render_csv,
    render_html,
    thresholds_of,
)
from unify.audit.params import MEDIA_TYPES


@get(
    "/v1/audit/consistency",
    opt={"scope": "audit:read"},
    tags=["audit"],
    summary="Is every channel treated alike? Waits, transfers, repeats, resolution and promises per channel",
    description=(
        "Contacts in [`from`, `to`) (default: the last 30 days up to now), optionally of one `channel`, `reason` or "
        "`queue`: per channel and overall the contacts, customers and unidentified share; queue wait and hold as each "
        "leg's record shows them and summed over the customer's journey; handle time, transfer and abandonment "
        "rates; repeat rate and first-contact resolution (UNIFY_REPEAT_WINDOW_DAYS, looking before `from` and past "
        "`to`); the channel-switch matrix; promises; reasons × channels with resolution; deviations of a channel "
        "from the others past the UNIFY_AUDIT_… thresholds (z-test for rates, Mood's median test for waits) in plain "
        "words; identity health. `format=json|csv|html` (or Accept: text/csv, text/html)."
    ),
    responses={
        200: ResponseSpec(
            data_container=ConsistencyReport,
            description="The report (JSON); `text/csv` one figure a row; `text/html` a page with inline SVG charts.",
        )
    },
)
async def consistency_route(
    request: Request,
    from_: Annotated[
        str | None,
        QueryParameter(
            name="from", description="Start: a date (UTC midnight) or an RFC 3339 time. Default: to − 30 d."
        ),
    ] = None,
    to: Annotated[
        str | None, QueryParameter(description="End, exclusive: a date (its end) or an RFC 3339 time. Default: now.")
    ] = None,
    channel: Annotated[str | None, QueryParameter(description="Only this channel.")] = None,
    reason: Annotated[str | None, QueryParameter(description="Only contacts with this reason.")] = None,
    queue: Annotated[str | None, QueryParameter(description="Only contacts in this queue.")] = None,
    format: Annotated[str | None, QueryParameter(description="`json` (default), `csv` or `html`.")] = None,
) -> Response[bytes]:
    fmt = output_format(format, request.headers.get("accept"))
    asked = audit_request(from_, to, channel=channel, reason=reason, queue=queue)
    settings = request.app.state.settings
    report = await consistency_report(
        request.app.state.pool,
        asked,
        repeat_window_days=settings.repeat_window_days,
        thresholds=thresholds_of(settings),
        connections=settings.audit_connections,
        time_limit=settings.audit_timeout_seconds,
    )
    if fmt == "csv":
        content = render_csv(report).encode()
    elif fmt == "html":
        content = render_html(report).encode()
    else:
        content = msgspec.json.encode(report)
    return Response(content=content, media_type=MEDIA_TYPES[fmt])


AUDIT_HANDLERS = (consistency_route,)
"""The audit routes."""
