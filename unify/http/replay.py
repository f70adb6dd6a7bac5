"""`POST /v1/raw-events/replay` (scope `admin`): `unify replay` over HTTP, with the same selection as a JSON body."""

from __future__ import annotations

from litestar import Request, post
from litestar.params import JSONBody

from schemas import ReplayReport, ReplayRequest
from unify.privacy.vault import RawKeyring
from unify.replay import ReplayContext, replay


@post(
    "/v1/raw-events/replay",
    opt={"scope": "admin"},
    status_code=200,
    tags=["raw-events"],
    summary="Replay stored raw deliveries that failed, after a fix",
    description=(
        "Applies the selected raw deliveries again with the current code and connector settings, each in one "
        "transaction on its own raw event row (never a second row), idempotently. Default selection: `rejected` "
        "and `failed`; `unverified` only with `reverify` (the signature is checked again; deliveries proven by "
        "credentials that are never stored are skipped); `processed` only with `force`. `dry_run` rolls back. "
        "Answers the report: per delivery, status before and after, counts and error; then totals."
    ),
)
async def replay_raw_events(request: Request, data: JSONBody[ReplayRequest]) -> ReplayReport:
    state = request.app.state
    options = state.ingest_options
    context = ReplayContext(
        options=options,
        keyring=options.sealer if isinstance(options.sealer, RawKeyring) else None,
        default_region=state.settings.default_region,
        max_batch=state.settings.max_batch,
    )
    return await replay(state.pool, data, context)
