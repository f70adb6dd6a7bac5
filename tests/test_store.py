"""Migrations: applied once, recorded in the ledger, safe when two processes start at once. Named queries: each is
prepared once per pooled connection, however long."""

from __future__ import annotations

import asyncio
from importlib import resources

import asyncpg

from unify.store import CACHEABLE_STATEMENT_BYTES, MIGRATIONS, applied_migrations, connect, load_queries, migrate


async def test_migrations_apply_once_and_are_recorded(fresh_database: str) -> None:
    conn = await connect(fresh_database)
    try:
        assert await applied_migrations(conn) == 0
        first = await migrate(conn)
        assert first == [m.version for m in MIGRATIONS]
        assert await migrate(conn) == []
        assert await applied_migrations(conn) == len(MIGRATIONS)
        tables = {r["tablename"] for r in await conn.fetch("select tablename from pg_tables where schemaname='public'")}
        assert {"raw_event", "interaction", "identifier", "interaction_identifier", "customer", "api_key"} <= tables
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_version_once(fresh_database: str) -> None:
    conns = [await connect(fresh_database) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = sorted(v for result in results for v in result)
        assert applied == [m.version for m in MIGRATIONS]
        rows = await conns[0].fetch("select version from schema_migration order by version")
        assert [r["version"] for r in rows] == [m.version for m in MIGRATIONS]
    finally:
        for c in conns:
            await c.close()


def test_every_named_query_is_small_enough_to_stay_prepared() -> None:
    groups = [f.name.removesuffix(".sql") for f in resources.files("unify.store").joinpath("queries").iterdir()]
    sizes = {(g, name): len(sql.encode()) for g in groups for name, sql in load_queries(g).items()}
    assert len(sizes) > 50 and sizes[("context", "read_context")] > 15 * 1024  # asyncpg's default limit
    assert {k: n for k, n in sizes.items() if n > CACHEABLE_STATEMENT_BYTES} == {}


async def test_a_long_statement_is_prepared_once_per_pooled_connection(pool: asyncpg.Pool) -> None:
    long = "select 1 as one -- " + "x" * 20_000
    async with pool.acquire() as conn:
        for _ in range(3):
            assert await conn.fetchval(long) == 1
        prepared = await conn.fetchval("select count(*) from pg_prepared_statements where statement = $1", long)
    assert prepared == 1
