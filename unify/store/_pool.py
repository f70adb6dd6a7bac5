"""The asyncpg pool: JSON columns are encoded and decoded with msgspec."""

from __future__ import annotations

import asyncpg
import msgspec

_encoder = msgspec.json.Encoder()

DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,  # a PostgresError, not an InterfaceError
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TransactionResolutionUnknownError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # A pooled connection the server closed while it was idle can fail its next query this way (asyncpg 0.32).
    asyncpg.exceptions._base.InternalClientError,
)
"""Errors that mean the database cannot be reached right now (down, restarting, connection lost): nothing can be
stored, not even a record of the failure; the client should retry."""


def _encode_json(value: object) -> str:
    return _encoder.encode(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=_encode_json, decoder=msgspec.json.decode, format="text"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections never change session state (no SET, LISTEN or session advisory locks: those use their own
    connections), so the round trip asyncpg spends resetting each released connection is skipped. An open
    transaction is still rolled back by the pool before this runs."""


CACHEABLE_STATEMENT_BYTES = 64 * 1024
"""Statements up to this size are prepared once per connection and reused. asyncpg's default (15 KiB) would leave
the context read (one statement of about 16 KiB with its comments) to be parsed and planned again on every call:
about 5 ms instead of 1."""


async def open_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    server_settings: dict[str, str] | None = None,
    command_timeout: float | None = 30,
) -> asyncpg.Pool:
    """Open a pool to `dsn`; every connection decodes JSON with msgspec. `server_settings` are session settings
    every connection of the pool starts with; `command_timeout` (seconds, None for none) bounds each statement."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        max_cacheable_statement_size=CACHEABLE_STATEMENT_BYTES,
        command_timeout=command_timeout,
        timeout=5,  # connecting (also on acquire, after an outage): a database that does not answer fails fast (503)
        server_settings=server_settings,
    )


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection with the same codecs as the pool (for the CLI and tests)."""
    conn = await asyncpg.connect(dsn, max_cacheable_statement_size=CACHEABLE_STATEMENT_BYTES)
    await _init_connection(conn)
    return conn
