"""The "bare ceiling" for `bench/ingest.py`: the least a Litestar + asyncpg + msgspec service can do per event.

One `POST /` handler reads the JSON body, decodes it with msgspec, inserts one row through an asyncpg pool opened
in the lifespan (same pool size as unify's default) and answers 201. No auth, no raw-body table, no identity
linking, no request log. Served by granian with one worker, like `unify serve --workers 1`:

    DATABASE_URL=postgresql://… python -m granian --interface asgi --workers 1 --working-dir bench _bare_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
from litestar import Litestar, Request, Response, post

_SCHEMA = """
create table if not exists hit (
    id           bigint generated always as identity primary key,
    external_id  text  not null unique,
    body         jsonb not null
)
"""
_INSERT = "insert into hit (external_id, body) values ($1, $2) returning id"


class _Event(msgspec.Struct):
    """Only what the bare handler looks at; other fields are ignored."""

    external_id: str


_decoder = msgspec.json.Decoder(_Event)


@asynccontextmanager
async def _lifespan(app: Litestar) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10, command_timeout=30)
    try:
        async with pool.acquire() as conn:
            await conn.execute(_SCHEMA)
        app.state.pool = pool
        yield
    finally:
        await pool.close()


@post("/", status_code=201)
async def ingest(request: Request) -> Response[dict[str, int]]:
    body = await request.body()
    event = _decoder.decode(body)
    row_id = await request.app.state.pool.fetchval(_INSERT, event.external_id, body.decode())
    return Response({"id": row_id}, status_code=201)


app = Litestar(route_handlers=[ingest], lifespan=[_lifespan])
