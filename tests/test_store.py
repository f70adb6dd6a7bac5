"""Migrations: applied once, recorded in the ledger, safe when two processes start at once."""

from __future__ import annotations

import asyncio

from unify.store import MIGRATIONS, applied_migrations, connect, migrate


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
