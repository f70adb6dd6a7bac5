"""The real `unify serve` process: embedded PostgreSQL by default, data that survives a restart, and the demo."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.events import native_event
from tests.server import UNIFY, unify_env, unify_serve


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    with unify_serve(env) as (base, _):
        yield base


def _create_key(env: dict[str, str], scope: str = "admin") -> str:
    done = subprocess.run(
        [*UNIFY, "keys", "create", "--scope", scope, "--name", "restart-test"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_data_survives_a_restart_on_the_same_data_directory(tmp_path: Path) -> None:
    env = unify_env(UNIFY_DATA_DIR=str(tmp_path / "unify-data"))
    key = _create_key(env)
    headers = {"Authorization": f"Bearer {key}"}
    with serving(env) as base:
        created = httpx.post(f"{base}/v1/interactions", json=native_event(), headers=headers, timeout=10)
        assert created.status_code == 201, created.text
        interaction_id = created.json()["interaction_id"]
    assert (tmp_path / "unify-data" / "pgdata" / "PG_VERSION").exists()
    with serving(env) as base:
        read = httpx.get(f"{base}/v1/interactions/{interaction_id}", headers=headers, timeout=10)
        assert read.status_code == 200
        assert read.json()["event"]["external_id"] == "call-1001"
        again = httpx.post(f"{base}/v1/interactions", json=native_event(), headers=headers, timeout=10)
        assert again.json()["outcome"] == "duplicate"


def test_demo_loads_histories_and_prints_a_key_that_reads_them(database_url: str) -> None:
    env = unify_env(DATABASE_URL=database_url)
    done = subprocess.run([*UNIFY, "demo"], env=env, capture_output=True, text=True, check=True)
    key = next(line.split(": ", 1)[1] for line in done.stderr.splitlines() if "demo API key" in line)
    again = subprocess.run([*UNIFY, "demo"], env=env, capture_output=True, text=True, check=True)
    assert "0 interactions created" in again.stderr  # loading twice creates nothing new

    with serving(env) as base:
        headers = {"Authorization": f"Bearer {key}"}
        import asyncio

        from unify.store import connect

        async def pick() -> tuple[str, int, int]:
            conn = await connect(database_url)
            try:
                row = await conn.fetchrow(
                    "select i.id::text, count(*) over () as n from interaction i where i.channel = 'email' limit 1"
                )
                customers = await conn.fetchval("select count(*) from customer")
                return row["id"], row["n"], customers
            finally:
                await conn.close()

        interaction_id, emails, customers = asyncio.run(pick())
        assert emails > 50 and customers >= 50
        read = httpx.get(f"{base}/v1/interactions/{interaction_id}", headers=headers, timeout=10)
        assert read.status_code == 200
        body = read.json()
        assert body["event"]["channel"] == "email" and body["event"]["source"] == "demo"
        customer = httpx.get(f"{base}/v1/customers/{body['customer_id']}", headers=headers, timeout=10).json()
        assert any(i["kind"] == "email" for i in customer["identifiers"])
