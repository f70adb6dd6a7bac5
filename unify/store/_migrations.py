"""Numbered `.sql` migrations, applied in order under an advisory lock and recorded in a ledger table.

Applying twice is a no-op; two processes starting at once apply each migration once (the second waits on the lock,
then finds the ledger up to date)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

log = structlog.get_logger("unify.store")

# Arbitrary constant shared by every unify process: the advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x756E6966  # "unif"
_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER = """
create table if not exists schema_migration (
    version     integer     primary key,
    name        text        not null,
    checksum    text        not null,
    applied_at  timestamptz not null default now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def _load() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files("unify.store").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001, 0002, … without gaps; found {versions}")
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load()


async def applied_migrations(conn: asyncpg.Connection) -> int:
    """How many migrations the ledger records (0 when there is no ledger yet)."""
    exists = await conn.fetchval("select to_regclass('schema_migration') is not null")
    if not exists:
        return 0
    return int(await conn.fetchval("select count(*) from schema_migration"))


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every migration the ledger does not record yet. Returns the versions applied by this call."""
    applied: list[int] = []
    await conn.execute("select pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(_LEDGER)
        done = {
            row["version"]: row["checksum"]
            for row in await conn.fetch("select version, checksum from schema_migration")
        }
        for migration in MIGRATIONS:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    log.warning("migration_changed_after_apply", version=migration.version, name=migration.name)
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "insert into schema_migration (version, name, checksum) values ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", version=migration.version, name=migration.name)
            applied.append(migration.version)
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied
