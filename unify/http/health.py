"""`/healthz` (the process is up) and `/readyz` (the database answers and is fully migrated)."""

from __future__ import annotations

from litestar import Request, Response, get

from schemas import Health, Readiness
from unify.http._problems import DATABASE_DOWN
from unify.store import MIGRATIONS, applied_migrations


@get("/healthz", tags=["health"], summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@get("/readyz", tags=["health"], summary="Readiness: database reachable and migrated (503 otherwise)")
async def readyz(request: Request) -> Response[Readiness]:
    known = len(MIGRATIONS)
    try:
        async with request.app.state.pool.acquire(timeout=2) as conn:
            applied = await applied_migrations(conn)
    except DATABASE_DOWN as exc:
        body = Readiness(status="unavailable", database="down", migrations_known=known, detail=type(exc).__name__)
        return Response(body, status_code=503, headers={"Retry-After": "5"})
    if applied < known:
        body = Readiness(
            status="unavailable",
            database="up",
            migrations_applied=applied,
            migrations_known=known,
            detail="migrations pending; run `unify migrate`",
        )
        return Response(body, status_code=503, headers={"Retry-After": "5"})
    return Response(Readiness(status="ready", database="up", migrations_applied=applied, migrations_known=known))
