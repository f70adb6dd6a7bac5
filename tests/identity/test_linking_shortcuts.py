"""The one-identifier shortcut of migration 0012 decides exactly what the general rule decides: random event
sequences linked through link_interaction_identifiers (with the shortcut) and through
link_interaction_identifiers_bridging (the rule of migration 0007 with its own one-identifier branch) leave the same
identifiers, customers, usages, merges and suggestions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

POLICY = {
    "limits": {"account": 1, "phone": 3, "email": 5},
    "shared_threshold": 3,
    "merge_min_verification": "authenticated",
}
LEVELS = ["unverified", "unverified", "carrier_attested", "signed", "authenticated"]


def random_events(seed: int, count: int = 150) -> list[tuple[list[str], list[str], list[str], datetime, str | None]]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events = []
    for n in range(count):
        chosen: dict[tuple[str, str], str] = {}
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            kind = rng.choice(["phone", "phone", "email", "account", "chat"])
            pool = 40 if n < count // 2 else 15  # later events name more known identifiers
            value = f"{kind}-{rng.randrange(pool)}"
            level = rng.choice(LEVELS)
            best = chosen.get((kind, value))
            if best is None or LEVELS.index(level) > LEVELS.index(best):
                chosen[(kind, value)] = level
        ordered = sorted(chosen.items())
        events.append(
            (
                [k for (k, _), _ in ordered],
                [v for (_, v), _ in ordered],
                [level for _, level in ordered],
                start + timedelta(minutes=rng.randrange(20_000)),
                rng.choice([None, None, f"Name {rng.randrange(4)}"]),
            )
        )
    return events


async def _state(conn: asyncpg.Connection) -> dict[str, Any]:
    identifiers = await conn.fetch(
        """select d.kind, d.value, d.verification, d.first_seen, d.last_seen, d.shared, d.link_rule,
                  d.link_verification, c.display_name,
                  (select array_agg(o.kind || ':' || o.value order by o.kind, o.value)
                   from identifier o join customer oc on oc.id = o.customer_id
                   where oc.root_id = c.root_id) as group_members,
                  (select array_agg(o.kind || ':' || o.value order by o.kind, o.value)
                   from identifier o where o.customer_id = d.customer_id) as direct_members
           from identifier d left join customer c on c.id = d.customer_id
           order by d.kind, d.value"""
    )
    usages = await conn.fetch(
        """select d.kind, d.value,
                  (select array_agg(o.kind || ':' || o.value order by o.kind, o.value)
                   from identifier o where o.customer_id = u.customer_id) as customer_members
           from identifier_usage u join identifier d on d.id = u.identifier_id
           order by 1, 2, 3"""
    )
    suggestions = await conn.fetch(
        """select s.status, s.kind, s.verification, s.conflict, s.evidence_count,
                  (select array_agg(d.kind || ':' || d.value order by d.kind, d.value)
                   from identifier d where d.id = any(s.identifier_ids)) as evidence
           from merge_suggestion s order by 1, 2, 3, 4, 5, 6"""
    )
    merges = await conn.fetch("select rule, verification from customer_merge order by 1, 2")
    customers = await conn.fetchval("select count(*) from customer")
    return {
        "identifiers": [dict(r) for r in identifiers],
        "usages": [dict(r) for r in usages],
        "suggestions": [dict(r) for r in suggestions],
        "merges": [dict(r) for r in merges],
        "customers": customers,
    }


class _Rollback(Exception):
    pass


async def _link_all(conn: asyncpg.Connection, function: str, events: list[Any]) -> dict[str, Any]:
    state: dict[str, Any] = {}
    try:
        async with conn.transaction():
            for kinds, values, levels, seen_at, name in events:
                await conn.fetchval(
                    f"select {function}(null, $1, $2, $3, $4, $5, $6)", kinds, values, levels, seen_at, name, POLICY
                )
            state = await _state(conn)
            raise _Rollback
    except _Rollback:
        pass
    return state


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_shortcut_decides_as_the_rule(db: asyncpg.Connection, seed: int) -> None:
    events = random_events(seed)
    with_shortcut = await _link_all(db, "link_interaction_identifiers", events)
    by_rule = await _link_all(db, "link_interaction_identifiers_bridging", events)
    assert with_shortcut["customers"] > 10
    assert any(len(kinds) > 1 for kinds, *_ in events)
    assert with_shortcut == by_rule
