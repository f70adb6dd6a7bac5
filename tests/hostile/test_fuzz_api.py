"""API fuzzing with schemathesis against the real `unify serve` process: for every documented operation, a bounded,
deterministic number of generated requests; none may get a 5xx, and every response must be documented (status code,
content type, body schema).

`GET /v1/stream` is left out: it is a never-ending server-sent events stream (tests/test_stream.py covers it).
Webhook routes check platform signatures, so fuzzed deliveries get the documented 401/404."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server import unify_env as _env
from tests.server import unify_serve
from unify.auth import create_key
from unify.embedded import dsn_for_database, ensure_database
from unify.http import create_app
from unify.settings import load_settings
from unify.store import connect

MAX_EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}  # per operation; deterministic
EXCLUDED = {"GET /v1/stream": "a never-ending server-sent events stream"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations() -> list[str]:
    """Every documented operation, read from the app's own OpenAPI document (no server needed to collect)."""
    app = create_app(load_settings(environ={}, database_url="postgresql://collect-only/unused", log_format="json"))
    paths = app.openapi_schema.to_schema()["paths"]
    methods = ("get", "put", "post", "delete", "patch")
    return sorted(f"{m.upper()} {path}" for path, item in paths.items() for m in methods if m in item)


OPERATIONS = _operations()
SERVER_LOG = Path(tempfile.gettempdir()) / f"unify-fuzz-{uuid.uuid4().hex[:8]}.log"


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`unify serve` as a process, its output in SERVER_LOG (read when a case fails: the traceback of a 5xx)."""
    with unify_serve(env, SERVER_LOG) as (base, _):
        yield base


def _server_errors() -> str:
    lines = SERVER_LOG.read_text(errors="replace").splitlines() if SERVER_LOG.exists() else []
    return "\n".join(line[:3000] for line in lines if '"unhandled_error"' in line or '"ingest_failed"' in line)[-8000:]


@pytest.fixture(scope="module")
def served(pg_admin_dsn: str, template_dsn: str) -> Iterator[tuple[Any, str, dict[str, str]]]:
    """A migrated database of its own, an admin key, and `unify serve` on it; the schema loaded from the server."""
    name = f"t_fuzz_{uuid.uuid4().hex[:10]}"
    asyncio.run(ensure_database(pg_admin_dsn, name, template="unify_test_template"))
    database_url = dsn_for_database(pg_admin_dsn, name)

    async def admin_key() -> str:
        conn = await connect(database_url)
        try:
            key, _ = await create_key(conn, "fuzz", ["admin"])
            return key
        finally:
            await conn.close()

    key = asyncio.run(admin_key())
    try:
        with serving(_env(DATABASE_URL=database_url, UNIFY_LOG_LEVEL="info")) as base:
            schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json")
            yield schema, base, {"Authorization": f"Bearer {key}"}
    finally:

        async def drop() -> None:
            conn = await connect(pg_admin_dsn)
            try:
                await conn.execute(f'drop database if exists "{name}" with (force)')
            finally:
                await conn.close()

        asyncio.run(drop())
        SERVER_LOG.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", list(MAX_EXAMPLES), ids=lambda mode: mode.value)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_fuzz_operation(served: tuple[Any, str, dict[str, str]], operation: str, mode: GenerationMode) -> None:
    if operation in EXCLUDED:
        pytest.skip(EXCLUDED[operation])
    schema, base, headers = served
    method, path = operation.split(" ", 1)
    api_operation = schema[path][method]
    started = time.monotonic()

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
    )
    @hypothesis.given(case=api_operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=30)

    try:
        run()
    except Exception:
        print("server errors:\n" + _server_errors())  # shown by pytest with the failure
        raise
    assert time.monotonic() - started < 120, f"{operation} took too long to fuzz"
