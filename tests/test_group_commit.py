"""Group commit: one-event deliveries that arrive together are stored in one statement, each exactly as if alone.

The deliveries go through `ingest_events`, the path `POST /v1/interactions` and the webhooks take, with a group
commit of one writer, so that which deliveries share a statement is known: deliveries started together all queue
before the writer runs, which then stores them in groups of `max_group`, in turn. Rows written by one statement
share a transaction id (`xmin`), which is how the tests see the groups."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import msgspec
import pytest
import structlog

import unify.ingest
from schemas import IngestBatchResult
from tests.events import native_event
from tests.raw import open_raw
from unify.ingest import GroupCommit, IngestOptions, RawDelivery, decode_native_events, ingest_events
from unify.privacy.setup import ingest_options
from unify.settings import Settings


def _options(settings: Settings, pool: asyncpg.Pool, max_group: int) -> IngestOptions:
    return replace(ingest_options(settings), group_commit=GroupCommit(pool, max_group=max_group, writers=1))


def _event(external_id: str, phone: str, **overrides: Any) -> dict[str, Any]:
    identifiers = [{"kind": "phone", "value": phone, "verification": "carrier_attested"}]
    return native_event(external_id, customer={"identifiers": identifiers}, **overrides)


async def _deliver(pool: asyncpg.Pool, options: IngestOptions, event: dict[str, Any]) -> IngestBatchResult:
    body = msgspec.json.encode(event)
    raw = RawDelivery(
        route="/v1/interactions",
        content_type="application/json",
        headers=[("content-type", "application/json")],
        body=body,
        body_size=len(body),
    )
    events, _ = decode_native_events(body, max_batch=10)
    return await ingest_events(pool, raw, events, options=options)


async def _deliver_noting_group(
    pool: asyncpg.Pool, options: IngestOptions, event: dict[str, Any]
) -> tuple[IngestBatchResult, int]:
    result = await _deliver(pool, options, event)  # each delivery runs in a task of its own, as requests do
    return result, structlog.contextvars.get_contextvars()["ingest_group"]


async def _transactions(pool: asyncpg.Pool, raw_event_ids: list[int]) -> int:
    return await pool.fetchval(
        "select count(distinct xmin::text) from raw_event where id = any($1::bigint[])", raw_event_ids
    )


async def test_deliveries_arriving_together_are_stored_in_groups_each_as_if_alone(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    options = _options(settings, pool, max_group=8)
    phones = [f"+1 415-555-01{n:02d}" for n in range(5)]
    events = [_event(f"sms-{n}", phones[n % 5]) for n in range(19)]
    events.append(_event("sms-3", phones[3]))  # the same delivery again: a duplicate, in a later group

    with structlog.contextvars.bound_contextvars():
        results = await asyncio.gather(*(_deliver_noting_group(pool, options, event) for event in events))
    assert [group for _, group in results] == [8] * 16 + [4] * 4  # the request log's `ingest_group`
    results = [result for result, _ in results]

    raw_ids = [r.raw_event_id for r in results]
    assert len(set(raw_ids)) == 20  # every delivery has its own raw row
    assert await _transactions(pool, raw_ids) == 3  # groups of 8, 8 and 4
    outcomes = [r.results[0].outcome for r in results]
    assert outcomes == ["created"] * 19 + ["duplicate"]
    assert results[19].results[0].interaction_id == results[3].results[0].interaction_id
    # One customer per phone, whichever group its deliveries were in, and the one each result names.
    customer_of_phone: dict[str, Any] = {}
    for n, result in enumerate(results[:19]):
        one = result.results[0]
        assert customer_of_phone.setdefault(phones[n % 5], one.customer_id) == one.customer_id
        stored = await pool.fetchval("select interaction_customer($1)", one.interaction_id)
        assert stored == one.customer_id
    assert len(set(customer_of_phone.values())) == 5
    # Each raw row is the delivery as sent, processed, naming its event.
    rows = {r["id"]: r for r in await pool.fetch("select * from raw_event where id = any($1::bigint[])", raw_ids)}
    for event, result in zip(events, results, strict=True):
        row = rows[result.raw_event_id]
        assert row["status"] == "processed"
        assert row["event_keys"] == [f"native/{event['external_id']}"]
        assert msgspec.json.decode(open_raw(row)) == event
        assert row["headers"] == [["content-type", "application/json"]]
    assert await pool.fetchval("select count(*) from interaction") == 19


class _Warnings:
    """Stands in for the module's logger: keeps its warnings and notices (structlog's own capture misses cached
    loggers)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    info = warning

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


async def test_a_delivery_that_fails_its_group_fails_alone(
    pool: asyncpg.Pool, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database-side failure the schema cannot see coming: this trigger refuses one interaction.
    await pool.execute(
        """
        create function refuse_poison() returns trigger language plpgsql as $$
        begin raise exception 'poisoned delivery %', new.external_id; end $$;
        create trigger refuse_poison before insert on interaction
            for each row when (new.external_id = 'poison') execute function refuse_poison();
        """
    )
    options = _options(settings, pool, max_group=8)
    events = [_event(f"ok-{n}", f"+1 415-555-02{n:02d}") for n in range(6)]
    events.insert(3, _event("poison", "+1 415-555-0299"))

    warnings = _Warnings()
    monkeypatch.setattr(unify.ingest, "log", warnings)
    results = await asyncio.gather(*(_deliver(pool, options, e) for e in events), return_exceptions=True)

    poisoned = results.pop(3)
    assert isinstance(poisoned, asyncpg.RaiseError) and "poisoned delivery poison" in str(poisoned)
    assert all(isinstance(r, IngestBatchResult) for r in results)
    good = [r for r in results if isinstance(r, IngestBatchResult)]
    assert [r.results[0].outcome for r in good] == ["created"] * 6
    # The group of seven failed as a whole (nothing of it kept) and each of its deliveries was then stored alone.
    assert await _transactions(pool, [r.raw_event_id for r in good]) == 6
    assert [f["deliveries"] for e, f in warnings.seen if e == "ingest_group_failed"] == [7]
    # The poisoned delivery is kept raw, failed, with the error; nothing else is.
    failed = await pool.fetch("select event_keys, error from raw_event where status <> 'processed'")
    assert len(failed) == 1 and "poisoned delivery poison" in failed[0]["error"]["detail"]
    assert await pool.fetchval("select count(*) from raw_event") == 7
    assert await pool.fetchval("select count(*) from interaction") == 6


async def test_a_group_that_meets_a_held_customer_gives_up_and_only_that_delivery_waits(
    pool: asyncpg.Pool, settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = _options(settings, pool, max_group=8)
    await _deliver(pool, options, _event("first", "+1 415-555-0300"))
    warnings = _Warnings()
    monkeypatch.setattr(unify.ingest, "log", warnings)
    holder = await asyncpg.connect(database_url)
    try:
        async with holder.transaction():
            # An erasure or a merge holding the customer's phone: a later event on that phone waits for it.
            await holder.execute("select 1 from identifier where value = '+14155550300' for update")
            other = asyncio.ensure_future(_deliver(pool, options, _event("other", "+1 415-555-0299")))
            blocked = asyncio.ensure_future(_deliver(pool, options, _event("second", "+1 415-555-0300")))
            # Both in one group; it waits 200 ms for the phone, gives up, and each is stored alone: the other
            # customer's delivery at once, the one on the held phone once the phone is free.
            assert (await asyncio.wait_for(other, 10)).results[0].outcome == "created"
            later = await asyncio.wait_for(_deliver(pool, options, _event("later", "+1 415-555-0301")), 10)
            assert later.results[0].outcome == "created"
            await asyncio.sleep(0.3)
            assert not blocked.done()
        assert (await asyncio.wait_for(blocked, 10)).results[0].outcome == "created"
    finally:
        await holder.close()
    assert [(e, f["deliveries"]) for e, f in warnings.seen] == [("ingest_group_waited_for_a_lock", 2)]
    assert await pool.fetchval("select count(*) from raw_event") == 4  # nothing of the failed group was kept


async def test_deliveries_queued_for_a_writer_that_is_cancelled_are_stored_alone(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    options = _options(settings, pool, max_group=8)
    group_commit = options.group_commit
    assert group_commit is not None
    events = [_event(f"q-{n}", f"+1 415-555-04{n:02d}") for n in range(3)]
    deliveries = [asyncio.ensure_future(_deliver(pool, options, event)) for event in events]
    await asyncio.sleep(0)  # all three queued, and their writer created but not started
    [writer] = group_commit._tasks
    writer.cancel()  # as when the server stops
    results = await asyncio.wait_for(asyncio.gather(*deliveries), 10)
    assert [r.results[0].outcome for r in results] == ["created"] * 3
    assert group_commit._busy == 0 and not group_commit._tasks


async def test_a_delivery_that_cannot_be_prepared_for_a_group_is_stored_alone_and_kept_raw(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    def broken_redactor(event: Any) -> Any:
        raise RuntimeError("redactor defect")

    options = replace(_options(settings, pool, max_group=8), redact=broken_redactor)
    with pytest.raises(RuntimeError, match="redactor defect"):
        await _deliver(pool, options, _event("defect", "+1 415-555-0500"))
    row = await pool.fetchrow("select status, error from raw_event")
    assert row["status"] == "failed" and "redactor defect" in row["error"]["detail"]


@pytest.mark.parametrize(("max_group", "writers"), [(-1, 1), (1, 0)])
def test_a_group_commit_needs_a_size_and_a_writer(pool: asyncpg.Pool, max_group: int, writers: int) -> None:
    with pytest.raises(ValueError, match="max_group"):
        GroupCommit(pool, max_group=max_group, writers=writers)
