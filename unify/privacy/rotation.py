"""Re-encrypting stored raw bodies under the current key, after a key rotation.

Rows are read in id order in batches; each is decrypted with the key it names (or taken as is when it was stored in
the clear) and sealed again under the keyring's current key. Each batch commits on its own, so the work can be
interrupted and run again: it only touches rows not yet under the current key."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from unify.privacy.setup import open_raw_body
from unify.privacy.vault import RawKeyring
from unify.store import load_queries

_Q = load_queries("retention")
_BATCH = 500


async def reseal_raw_events(
    conn: asyncpg.Connection, keyring: RawKeyring, progress: Callable[[int, int], None] | None = None
) -> int:
    """Re-encrypt every raw body not under `keyring.current_id`; returns how many were re-encrypted."""
    total = await conn.fetchval(_Q["count_raw_events_to_reseal"], keyring.current_id)
    done = 0
    last_id = 0
    while True:
        rows = await conn.fetch(_Q["raw_events_to_reseal"], keyring.current_id, last_id, _BATCH)
        if not rows:
            return done
        updates = []
        for row in rows:
            key_id, sealed = keyring.encrypt(open_raw_body(keyring, row), associated_data=row["route"].encode())
            updates.append((row["id"], sealed, key_id))
        async with conn.transaction():
            await conn.executemany(_Q["reseal_raw_event"], updates)
        done += len(rows)
        last_id = rows[-1]["id"]
        if progress is not None:
            progress(done, total)
