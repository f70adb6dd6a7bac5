"""The waits tests' medians (migration 0019) against `percentile_disc(0.5)`, on the same values in PostgreSQL.

audit_wait_test takes a cell's medians and counts from each channel's values in order; the figures must be exactly
those of the aggregates it replaced: the pooled median, each channel's, the median of the other channels' values,
and how many values (in all and per channel) are at or below the pooled median."""

from __future__ import annotations

import random

import asyncpg
import pytest

CHANNELS = ("voice", "sms", "email", "chat")

# The figures as the aggregates give them, per case.
_EXPECTED = """
with cases as (select distinct case_no from wait_value),
pooled as (
    select case_no, percentile_disc(0.5) within group (order by v) as m from wait_value group by case_no
)
select c.case_no,
       p.m as pooled_median,
       (select count(*) from wait_value w where w.case_no = c.case_no and w.v <= p.m) as le_pooled,
       array(select (select percentile_disc(0.5) within group (order by w.v) from wait_value w
                     where w.case_no = c.case_no and w.channel = ch.name)
             from unnest($1::text[]) with ordinality as ch (name, position) order by ch.position) as median_channel,
       array(select (select percentile_disc(0.5) within group (order by w.v) from wait_value w
                     where w.case_no = c.case_no and w.channel <> ch.name)
             from unnest($1::text[]) with ordinality as ch (name, position) order by ch.position) as median_others,
       array(select (select count(*) from wait_value w
                     where w.case_no = c.case_no and w.channel = ch.name and w.v <= p.m)
             from unnest($1::text[]) with ordinality as ch (name, position) order by ch.position) as le_channel
from cases c
left join pooled p on p.case_no = c.case_no
order by c.case_no
"""

# The same from each channel's values in order, as figures_wait_tests builds them.
_ACTUAL = """
select c.case_no,
       t.o_pooled_median as pooled_median,
       t.o_le_pooled as le_pooled,
       t.o_median_channel as median_channel,
       t.o_median_others as median_others,
       t.o_le_channel as le_channel
from (
    select case_no,
           row((array_agg(v order by v) filter (where channel = 'voice' and v is not null)),
               (array_agg(v order by v) filter (where channel = 'sms' and v is not null)),
               (array_agg(v order by v) filter (where channel = 'email' and v is not null)),
               (array_agg(v order by v) filter (where channel = 'chat' and v is not null)))::audit_channel_values as vs
    from wait_value
    group by case_no
) as c
cross join lateral audit_wait_test(c.vs) t
order by c.case_no
"""


def _cases(rng: random.Random) -> list[list[tuple[str, float | None]]]:
    """Value sets: empty channels, one value, all equal, odd and even counts, heavy ties, nulls, a long tail, and
    one large set (binary search over thousands of values)."""
    cases: list[list[tuple[str, float | None]]] = [
        [("voice", 60.0)],
        [("email", 5.0), ("email", 5.0), ("email", 5.0)],
        [("voice", 1.0), ("sms", 2.0)],
        [("voice", 1.0), ("voice", 2.0), ("chat", 2.0), ("chat", 3.0)],
        [("sms", None), ("sms", 4.0), ("chat", None)],
        [("voice", 0.0), ("sms", float("inf")), ("email", 3.5), ("chat", 3.5), ("chat", 3.5)],
    ]
    for _ in range(150):
        size = rng.choice([1, 2, 3, 5, 8, 13, 40, 101])
        present = [c for c in CHANNELS if rng.random() < 0.7] or [rng.choice(CHANNELS)]
        # few distinct values (ties everywhere) or many
        values = [float(v) for v in range(rng.choice([2, 5, 1000]))]
        case: list[tuple[str, float | None]] = []
        for _ in range(size):
            channel = rng.choice(present)
            value = None if rng.random() < 0.05 else rng.choice(values) * rng.choice([1.0, 1.5, 60.0])
            case.append((channel, value))
        cases.append(case)
    cases.append([(rng.choice(CHANNELS), rng.expovariate(1 / 120)) for _ in range(5000)])
    return cases


@pytest.mark.parametrize("seed", [1, 2])
async def test_medians_match_percentile_disc(db: asyncpg.Connection, seed: int) -> None:
    await db.execute("create temp table wait_value (case_no integer, channel text, v double precision)")
    cases = _cases(random.Random(seed))
    rows = [(n, channel, v) for n, case in enumerate(cases) for channel, v in case]
    await db.copy_records_to_table("wait_value", records=rows)

    expected = [tuple(r) for r in await db.fetch(_EXPECTED, list(CHANNELS))]
    actual = [tuple(r) for r in await db.fetch(_ACTUAL)]

    assert len(actual) == len(cases)
    for want, got in zip(expected, actual, strict=True):
        assert got == want, f"case {want[0]}: {sorted(v for _, v in cases[want[0]] if v is not None)[:20]}"


async def test_cell_without_values(db: asyncpg.Connection) -> None:
    """A cell whose channels have no values (a journey wait never recorded): no medians, nothing at or below."""
    row = await db.fetchrow("select * from audit_wait_test(row(null, null, '{}', null)::audit_channel_values)")
    assert tuple(row) == (None, 0, [None] * 4, [None] * 4, [0] * 4)
