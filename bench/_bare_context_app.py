"""The "bare ceiling" for `bench/context.py`: the least a Litestar + asyncpg service can do to answer a lookup.

Two `GET` routes over unify's own tables (the database `unify serve` writes), each taking `?phone=` as stored
(E.164: nothing is normalized), finding the `identifier` by its unique (kind, value) and selecting the newest 50
`interaction` rows linked to it through `interaction_identifier` (indexed by identifier), with the columns of a
context timeline entry:

    /msgspec   the rows are fetched as records and encoded to JSON by msgspec in Python;
    /pg-json   PostgreSQL builds the JSON array (`json_agg`) and the handler returns its bytes as they come;
    /logged    as /msgspec, and the same statement writes a `context_access` row as unify's context read does
               (api key `LOGGED_KEY`): not a ceiling, but what a read that is logged before it is answered costs
               even with nothing else to do.

An unknown number answers 200 `[]`. No auth, no customer group, no journey, no access log (but on /logged). The
asyncpg pool is opened in the lifespan as unify opens its own: same size, and no reset round trip when a connection is
released.
Served by granian with one worker, like `unify serve --workers 1`:

    DATABASE_URL=postgresql://…/unify python -m granian --interface asgi --workers 1 \\
        --working-dir bench _bare_context_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, get

_ROWS = """
select i.id as interaction_id, i.source, i.channel, i.direction, i.occurred_at, i.status, i.reason, i.disposition,
       i.subject, left(i.event ->> 'text', 200) as snippet, i.agent, i.queue, i.queue_wait_seconds, i.hold_seconds,
       i.talk_seconds, i.transfer_count, i.thread_key
from identifier d
join interaction_identifier ii on ii.identifier_id = d.id
join interaction i on i.id = ii.interaction_id
where d.kind = 'phone' and d.value = $1
order by i.occurred_at desc, i.id desc
limit 50
"""
_PG_JSON = f"select coalesce(json_agg(x), '[]')::text from ({_ROWS}) x"
LOGGED_KEY = "00000000-0000-0000-0000-0000000b0a2e"
"""The api_key_id of the access-log rows /logged writes (bench/context.py deletes them at the end)."""
_LOGGED = f"""
with logged as (
    insert into context_access (api_key_id, route, customer_id, identifier_kind, identifier_value, match_status,
                                verification, masked)
    select '{LOGGED_KEY}'::uuid, 'context', d.customer_id, 'phone', $1::text,
           case when d.id is null then 'unknown' else 'found' end, 'unverified', false
    from (select) as one
    left join identifier d on d.kind = 'phone' and d.value = $1::text
)
{_ROWS}
"""
_JSON = "application/json"
_encoder = msgspec.json.Encoder()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """As unify's pool: skip the reset query asyncpg runs on every released connection."""


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=2, max_size=10, reset=_keep_session, command_timeout=30
    )
    try:
        app.state.pool = pool
        yield
    finally:
        await pool.close()


@get("/msgspec")
async def rows_msgspec(request: Request, phone: str) -> Response[bytes]:
    records = await request.app.state.pool.fetch(_ROWS, phone)
    return Response(_encoder.encode([dict(r) for r in records]), media_type=_JSON)


@get("/logged")
async def rows_logged(request: Request, phone: str) -> Response[bytes]:
    records = await request.app.state.pool.fetch(_LOGGED, phone)
    return Response(_encoder.encode([dict(r) for r in records]), media_type=_JSON)


@get("/pg-json")
async def rows_pg_json(request: Request, phone: str) -> Response[bytes]:
    document = await request.app.state.pool.fetchval(_PG_JSON, phone)
    return Response(document.encode(), media_type=_JSON)


@get("/")
async def ready() -> Response[bytes]:
    return Response(b"ok", media_type="text/plain")


app = Litestar(route_handlers=[rows_msgspec, rows_pg_json, rows_logged, ready], lifespan=[_lifespan])
