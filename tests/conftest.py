"""Test fixtures: one real PostgreSQL per test session, a fresh migrated database per test.

With no TEST_DATABASE_URL / DATABASE_URL, the embedded PostgreSQL is started in a temporary directory (and removed
at the end). Otherwise that server is used; its user needs the CREATEDB privilege."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.raw import TEST_KEYRING
from unify.auth import create_key
from unify.embedded import dsn_for_database, ensure_database, start_server
from unify.http import create_app
from unify.settings import Settings, load_settings
from unify.store import connect, migrate, open_pool

TEMPLATE = "unify_test_template"


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    # Not pytest's tmp_path: concurrent pytest runs prune each other's numbered temporary directories.
    home = Path(tempfile.mkdtemp(prefix="unify-test-pg-"))
    atexit.register(shutil.rmtree, home, True)  # runs after the server's own exit hook stops it and deletes pgdata
    yield start_server(home / "pgdata", cleanup="delete")


@pytest.fixture(scope="session")
def template_dsn(pg_admin_dsn: str) -> str:
    async def build() -> None:
        admin = await asyncpg.connect(pg_admin_dsn)
        try:
            await admin.execute(f'drop database if exists "{TEMPLATE}" with (force)')
        finally:
            await admin.close()
        await ensure_database(pg_admin_dsn, TEMPLATE)
        conn = await connect(dsn_for_database(pg_admin_dsn, TEMPLATE))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return dsn_for_database(pg_admin_dsn, TEMPLATE)


@contextmanager
def scratch_database(pg_admin_dsn: str, *, template: str | None = TEMPLATE) -> Iterator[str]:
    """A database of its own (a copy of the migrated template; `template=None`: empty), dropped afterwards.
    Yields its DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(ensure_database(pg_admin_dsn, name, template=template))
    try:
        yield dsn_for_database(pg_admin_dsn, name)
    finally:
        asyncio.run(_drop(pg_admin_dsn, name))


@pytest.fixture
def fresh_database(pg_admin_dsn: str) -> Iterator[str]:
    """An empty database (no migrations applied); dropped afterwards."""
    with scratch_database(pg_admin_dsn, template=None) as dsn:
        yield dsn


# Every interaction whose stored owner (migration 0014) is not what the ownership rule says of it now.
_OWNERS_ASTRAY = """
select i.id, i.owner_identifier_id as stored, o.owner_identifier_id as rule
from interaction i
join interaction_owners(array(select id from interaction)) o on o.interaction_id = i.id
where i.owner_identifier_id is distinct from o.owner_identifier_id
limit 5
"""


async def _owners_astray(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(_OWNERS_ASTRAY)
    except (asyncpg.UndefinedFunctionError, asyncpg.UndefinedTableError):
        return []  # a test that took the schema apart
    finally:
        await conn.close()


@pytest.fixture
def database_url(pg_admin_dsn: str, template_dsn: str) -> Iterator[str]:
    """A migrated database of its own for one test; dropped afterwards. Whatever the test did, every interaction's
    stored owner must still be what the ownership rule says (checked at the end)."""
    with scratch_database(pg_admin_dsn) as dsn:
        yield dsn
        astray = asyncio.run(_owners_astray(dsn))
        assert not astray, f"stored interaction owners differ from the rule: {[dict(r) for r in astray]}"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the test's database."""
    opened = await open_pool(database_url, min_size=1, max_size=2)
    yield opened
    await opened.close()


async def _drop(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(
        environ={},
        database_url=database_url,
        log_format="json",
        max_body_bytes=65_536,
        max_import_bytes=262_144,
        raw_keys=TEST_KEYRING.to_setting(),
        data_dir=str(Path(tempfile.gettempdir()) / "unify-tests-never-written"),
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def api_key(db: asyncpg.Connection) -> str:
    key, _ = await create_key(db, "tests", ["ingest", "context:read"])
    return key


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}
