"""Retention: raw bodies are kept only as long as needed, interactions as long as each channel's policy says.

- Processed raw bodies: `UNIFY_RAW_RETENTION_DAYS` (30). Rejected, unverified and failed ones stay longer
  (`UNIFY_FAILED_RAW_RETENTION_DAYS`, 90) so that they can be replayed after a fix.
- Interactions: `UNIFY_RETENTION_<CHANNEL>_DAYS` (0 = keep for ever), with their identifier links.
- Transient webhook state: split-message parts that never completed (1 day), replay tokens (7 days).

`unify purge` runs it once; `unify serve` runs it every `UNIFY_PURGE_INTERVAL_SECONDS` in one worker."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import msgspec
import structlog

from unify.settings import Settings
from unify.store import load_queries

log = structlog.get_logger("unify.retention")
_Q = load_queries("retention")
_BATCH = 5000
_PURGE_LOCK = 0x756E6970  # "unip": one purger at a time across workers


class PurgeReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a purge removed, by kind."""

    raw_processed: int = 0
    raw_unprocessed: int = 0
    interactions: dict[str, int] = msgspec.field(default_factory=dict)
    fragments: int = 0
    replay_tokens: int = 0


async def _delete_in_batches(conn: asyncpg.Connection, query: str, *args: object) -> int:
    total = 0
    while True:
        status = await conn.execute(query, *args, _BATCH)
        deleted = int(status.rsplit(" ", 1)[1])
        total += deleted
        if deleted < _BATCH:
            return total


async def purge(conn: asyncpg.Connection, settings: Settings) -> PurgeReport:
    """Delete everything past its retention. Each batch commits on its own, so a long purge never holds locks."""
    raw_processed = await _delete_in_batches(conn, _Q["purge_raw_events"], "processed", settings.raw_retention_days)
    raw_unprocessed = await _delete_in_batches(
        conn, _Q["purge_raw_events"], "unprocessed", settings.failed_raw_retention_days
    )
    interactions: dict[str, int] = {}
    for channel in ("voice", "sms", "email", "chat"):
        days = getattr(settings, f"retention_{channel}_days")
        if days > 0:
            interactions[channel] = await _delete_in_batches(conn, _Q["purge_interactions"], channel, days)
    transient = await conn.fetchrow(_Q["purge_transient"])
    report = PurgeReport(
        raw_processed=raw_processed,
        raw_unprocessed=raw_unprocessed,
        interactions=interactions,
        fragments=transient["fragments"],
        replay_tokens=transient["tokens"],
    )
    log.info("purged", **msgspec.structs.asdict(report))
    return report


async def purge_periodically(pool: asyncpg.Pool, settings: Settings) -> None:
    """The serve-time loop: every interval, the worker that gets the advisory lock purges."""
    while True:
        await asyncio.sleep(settings.purge_interval_seconds)
        try:
            async with pool.acquire() as conn:
                if await conn.fetchval("select pg_try_advisory_lock($1)", _PURGE_LOCK):
                    try:
                        await purge(conn, settings)
                    finally:
                        await conn.execute("select pg_advisory_unlock($1)", _PURGE_LOCK)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed purge must not stop the service; it is retried next interval
            log.exception("purge_failed")


@contextlib.asynccontextmanager
async def periodic_purge(pool: asyncpg.Pool, settings: Settings):  # type: ignore[no-untyped-def]
    """Run `purge_periodically` for the lifetime of the service (nothing when the interval is 0)."""
    if settings.purge_interval_seconds <= 0:
        yield
        return
    task = asyncio.create_task(purge_periodically(pool, settings))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
