"""A reusable, realistic contact-center data set for benchmarks (bench/audit.py; the context benchmark too).

`load_dataset(dsn, interactions=1_000_000, customers=100_000, seed=7)` writes native events as JSONL and loads them
through the bulk import path (`unify.importer.import_file`, what `unify import FILE` runs), then adds promises.
It does nothing when the database already holds that data set (the marker table `bench_dataset`), so a benchmark
can be run again on the same data directory without loading twice.

What is generated
    `customers` people, each with a phone number, an email address, a chat visitor id and an account number, a
    preferred channel and (some) a display name and an `attributes.tier`. Contacts come in journeys: a first
    contact about billing, technical, cancel, complaint or an address change, then repeats within days with a
    probability that depends on the channel (email customers come back more), sometimes on another channel.
    Channels: voice (caller ID in formatting variants, carrier-attested or not; an account authenticated by IVR PIN
    on some calls; a few anonymous callers), SMS, email (signed), chat (logged in: visitor id, email and account
    authenticated, which bridges a person's channels). Mostly inbound, some outbound callbacks. Queue waits and
    holds come from log-normal distributions whose medians differ per channel (phone ~1 min, chat ~40 s, SMS ~10
    min, email ~4 h); some calls are transferred (a second leg naming the first in `details.previous_contact_id`);
    some contacts are abandoned or undelivered. Everything falls in the last `days` (60) days up to now.
    Customers are drawn with a skew (a few contact often, most rarely).

Helpers for other benchmarks
    `sample_phones(dsn, n)` / `fetch_sample_phones(conn, n)`: phone numbers of loaded customers, written in a
    formatting variant (`+1 415-555-0100`, `(415) 555 0100`, `tel:+1…`); `sample_emails`, `sample_customer_ids`
    likewise. `dataset_database(...)` names the database a data set lives in.
"""

from __future__ import annotations

import asyncio
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

REASONS = ("billing", "technical", "cancel", "complaint", "address_change")
REASON_WEIGHTS = (0.38, 0.30, 0.12, 0.10, 0.10)
CHANNELS = ("voice", "sms", "email", "chat")
CHANNEL_WEIGHTS = (0.45, 0.12, 0.23, 0.20)
QUEUES = {"billing": "billing", "technical": "support", "cancel": "retention", "complaint": "care",
          "address_change": "support"}  # fmt: skip
# Per channel: median queue wait (s), its log-normal sigma, share with a hold, median hold (s), repeat probability,
# share abandoned / undelivered.
PROFILES: dict[str, dict[str, float]] = {
    "voice": {"wait": 60, "sigma": 1.0, "hold_share": 0.35, "hold": 60, "repeat": 0.22, "failed": 0.06},
    "sms": {"wait": 600, "sigma": 1.1, "hold_share": 0.0, "hold": 0, "repeat": 0.28, "failed": 0.02},
    "email": {"wait": 14_400, "sigma": 1.2, "hold_share": 0.0, "hold": 0, "repeat": 0.38, "failed": 0.01},
    "chat": {"wait": 40, "sigma": 0.9, "hold_share": 0.15, "hold": 45, "repeat": 0.20, "failed": 0.08},
}
AREAS = ("415", "212", "312", "646", "718", "213", "305", "617", "206", "512", "303", "404")
FIRST = "Ada Grace Alan Edsger Barbara Donald Margaret Linus Radia Ken Frances John Hedy Tim Katherine".split()
LAST = "Lovelace Hopper Turing Dijkstra Liskov Knuth Hamilton Torvalds Perlman Thompson Allen Backus Lamarr".split()
TIERS = ("bronze", "silver", "gold", "platinum")
MARKER = """
create table if not exists bench_dataset (
    key           text        primary key,
    interactions  integer     not null,
    customers     integer     not null,
    seed          integer     not null,
    generated_at  timestamptz not null,
    loaded_at     timestamptz not null default now(),
    seconds       double precision
)
"""


def log(message: str) -> None:
    print(f"[dataset] {message}", file=sys.stderr, flush=True)


def dataset_key(interactions: int, customers: int, seed: int) -> str:
    return f"{interactions}:{customers}:{seed}"


def dataset_database(interactions: int, customers: int, seed: int) -> str:
    """The name of the database a data set is loaded into by the benchmarks (one per size and seed)."""
    return f"bench_{interactions}_{customers}_{seed}"


def phone_of(index: int) -> str:
    """The E.164 number of customer `index`."""
    area = AREAS[index % len(AREAS)]
    rest = index // len(AREAS)
    return f"+1{area}{200 + rest // 10_000 % 800:03d}{rest % 10_000:04d}"


def written_phone(e164: str, rng: random.Random) -> str:
    """`e164` as people and platforms write it."""
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    return rng.choice(
        [
            f"+1 {area}-{exchange}-{line}",
            f"({area}) {exchange} {line}",
            f"tel:{e164}",
            f"{area}.{exchange}.{line}",
            e164,
        ]
    )


@dataclass(slots=True)
class _Customer:
    index: int
    phone: str
    email: str
    visitor: str
    account: str
    name: str | None
    tier: str | None
    channels: tuple[float, ...]  # cumulative weights of the preferred channels


def _customer(index: int, rng: random.Random) -> _Customer:
    prefs = [w * rng.uniform(0.2, 3.0) for w in CHANNEL_WEIGHTS]
    if rng.random() < 0.55:  # most people stick to one channel
        favourite = rng.randrange(4)
        prefs = [w * (8 if i == favourite else 1) for i, w in enumerate(prefs)]
    total, acc, cum = sum(prefs), 0.0, []
    for w in prefs:
        acc += w / total
        cum.append(acc)
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.6 else None
    return _Customer(
        index=index,
        phone=phone_of(index),
        email=f"customer{index}@example.com",
        visitor=f"web:v{index}",
        account=f"AC-{index:07d}",
        name=name,
        tier=rng.choice(TIERS) if rng.random() < 0.2 else None,
        channels=tuple(cum),
    )


class _Writer:
    def __init__(self, out: Any, seed: int) -> None:
        self.out = out
        self.seed = seed
        self.count = 0
        self.encoder = msgspec.json.Encoder()

    def write(self, event: dict[str, Any]) -> str:
        self.count += 1
        self.out.write(self.encoder.encode(event) + b"\n")
        return event["external_id"]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _identifiers(c: _Customer, channel: str, rng: random.Random) -> list[dict[str, str]]:
    if channel == "voice":
        if rng.random() < 0.03:
            return [{"kind": "phone", "value": "anonymous"}]
        level = "carrier_attested" if rng.random() < 0.5 else "unverified"
        ids = [{"kind": "phone", "value": written_phone(c.phone, rng), "verification": level}]
        if rng.random() < 0.3:  # IVR PIN
            ids.append({"kind": "account", "value": c.account, "verification": "authenticated"})
        return ids
    if channel == "sms":
        return [{"kind": "phone", "value": written_phone(c.phone, rng)}]
    if channel == "email":
        return [{"kind": "email", "value": c.email, "verification": "signed"}]
    ids = [
        {"kind": "chat", "value": c.visitor, "verification": "authenticated" if rng.random() < 0.7 else "unverified"}
    ]
    if ids[0]["verification"] == "authenticated":
        ids += [
            {"kind": "email", "value": c.email, "verification": "authenticated"},
            {"kind": "account", "value": c.account, "verification": "authenticated"},
        ]
    return ids


def _contact(
    w: _Writer, c: _Customer, channel: str, at: float, reason: str, rng: random.Random, *, direction: str = "inbound"
) -> float:
    """Write one contact (and its transfer leg, if any); returns when it ended."""
    p = PROFILES[channel]
    n = w.count
    external_id = f"b{w.seed}-{n}"
    agent = f"agent.{rng.randrange(400):03d}"
    wait = round(p["wait"] * math.exp(rng.gauss(0, p["sigma"])), 1) if direction == "inbound" else None
    failed = rng.random() < p["failed"]
    event: dict[str, Any] = {
        "source": "native",
        "external_id": external_id,
        "channel": channel,
        "direction": direction,
        "occurred_at": _iso(at),
        "customer": {"identifiers": _identifiers(c, channel, rng)},
        "reason": reason,
        "queue": QUEUES[reason],
        "details": {"type": channel},
    }
    if c.name and channel in ("email", "chat"):
        event["customer"]["display_name"] = c.name
    if c.tier:
        event["attributes"] = {"tier": c.tier}
    if failed:
        event["status"] = {"voice": "abandoned", "chat": "abandoned", "sms": "undelivered", "email": "bounced"}[channel]
        if wait is not None:
            event["queue_wait_seconds"] = wait
        ended = at + (wait or 0)
        event["ended_at"] = _iso(ended)
        w.write(event)
        return ended
    hold = round(p["hold"] * math.exp(rng.gauss(0, 0.8)), 1) if rng.random() < p["hold_share"] else None
    talk = round(rng.lognormvariate(math.log(240 if channel == "voice" else 420), 0.6), 1)
    answered = at + (wait or 5)
    event.update(status="completed", answered_at=_iso(answered), agent=agent)
    if wait is not None:
        event["queue_wait_seconds"] = wait
    if channel in ("voice", "chat"):
        event["talk_seconds"] = talk
        if hold is not None:
            event["hold_seconds"] = hold
    ended = answered + talk + (hold or 0)
    event["ended_at"] = _iso(ended)
    transfer = channel == "voice" and direction == "inbound" and rng.random() < 0.1
    if transfer:
        event["transfer_count"] = 1
    w.write(event)
    if transfer:
        leg_wait = round(p["wait"] * 1.5 * math.exp(rng.gauss(0, p["sigma"])), 1)
        leg_hold = round(p["hold"] * math.exp(rng.gauss(0, 0.8)), 1) if rng.random() < 0.5 else None
        leg_talk = round(rng.lognormvariate(math.log(200), 0.6), 1)
        leg_answered = ended + leg_wait
        leg_end = leg_answered + leg_talk + (leg_hold or 0)
        leg = {
            **event,
            "external_id": f"{external_id}-t",
            "occurred_at": _iso(ended),
            "answered_at": _iso(leg_answered),
            "ended_at": _iso(leg_end),
            "agent": f"agent.{rng.randrange(400):03d}",
            "queue": rng.choice(["retention", "support", "billing", "care"]),
            "queue_wait_seconds": leg_wait,
            "talk_seconds": leg_talk,
            "transfer_count": 0,
            "details": {"type": "voice", "previous_contact_id": external_id},
        }
        leg.pop("hold_seconds", None)
        if leg_hold is not None:
            leg["hold_seconds"] = leg_hold
        w.write(leg)
        ended = leg_end
    return ended


def write_events(path: Path, interactions: int, customers: int, seed: int, now: datetime, days: int = 60) -> int:
    """Write about `interactions` events (journeys are not cut short, so a few more) to `path`; returns the count."""
    rng = random.Random(seed)
    people = [_customer(i, rng) for i in range(customers)]
    end = now.timestamp() - 3600
    start = end - days * 86_400
    with path.open("wb") as out:
        w = _Writer(out, seed)
        while w.count < interactions:
            c = people[min(customers - 1, int(customers * rng.random() ** 1.6))]
            at = rng.uniform(start, end - 86_400)
            reason = rng.choices(REASONS, REASON_WEIGHTS)[0]
            pick = rng.random()
            channel = CHANNELS[next(i for i, x in enumerate(c.channels) if pick <= x or i == 3)]
            while True:
                ended = _contact(w, c, channel, at, reason, rng)
                if rng.random() < 0.05 and ended + 7200 < end:  # an outbound callback
                    _contact(w, c, "voice", ended + rng.uniform(600, 86_400), reason, rng, direction="outbound")
                if rng.random() >= PROFILES[channel]["repeat"]:
                    break
                at = ended + rng.expovariate(1 / (2 * 86_400))
                if at >= end:
                    break
                if rng.random() < 0.35:  # switches channel
                    channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
        return w.count


async def _promises(conn: asyncpg.Connection, seed: int, now: datetime) -> int:
    """About one promise per 40 answered inbound contacts, made during the contact, due 1–3 days later; kept,
    broken or (past due or not) still open."""
    return await conn.fetchval(
        """
        with made as (
            insert into promise (customer_id, text, due_at, channel, agent, interaction_id, status, created_at,
                                 resolved_at)
            select o.customer_id, 'we will call you back', i.occurred_at + (1 + abs(hashtext(i.external_id)) % 3) * interval '1 day',
                   i.channel, i.agent, i.id,
                   case when abs(hashtext(i.external_id || $1)) % 10 < 6 then 'kept'
                        when abs(hashtext(i.external_id || $1)) % 10 < 8 then 'broken'
                        else 'open' end,
                   i.occurred_at,
                   case when abs(hashtext(i.external_id || $1)) % 10 < 8 then i.occurred_at + interval '1 day' end
            from interaction i
            join interaction_owner o on o.interaction_id = i.id
            where i.direction = 'inbound' and i.answered_at is not null and abs(hashtext(i.external_id)) % 40 = 0
            returning 1
        )
        select count(*) from made
        """,  # noqa: E501
        str(seed),
    )


@dataclass(frozen=True)
class DatasetInfo:
    key: str
    interactions: int
    customers: int
    seed: int
    loaded: bool  # False: it was there already
    seconds: float
    rows: int  # interactions in the database


async def load_dataset_async(
    dsn: str,
    interactions: int = 1_000_000,
    customers: int = 100_000,
    seed: int = 7,
    *,
    work_dir: Path | None = None,
    chunk_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> DatasetInfo:
    """Generate and import the data set into `dsn` (migrated first) unless its marker says it is there."""
    from unify.importer import ImportSource, import_file
    from unify.privacy.setup import ingest_options
    from unify.settings import load_settings
    from unify.store import migrate, open_pool

    key = dataset_key(interactions, customers, seed)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(MARKER)
        if await conn.fetchval("select 1 from bench_dataset where key = $1", key):
            rows = await conn.fetchval("select count(*) from interaction")
            log(f"data set {key} already loaded ({rows:,} interactions); skipping the load")
            return DatasetInfo(key, interactions, customers, seed, False, 0.0, rows)
    finally:
        await conn.close()

    started = time.perf_counter()
    now = datetime.now(UTC)
    work = Path(work_dir or tempfile.mkdtemp(prefix="unify-dataset-"))
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    path = work / f"dataset-{interactions}-{customers}-{seed}.jsonl"
    log(f"writing {interactions:,} interactions of {customers:,} customers to {path}")
    written = await asyncio.to_thread(write_events, path, interactions, customers, seed, now)
    log(f"wrote {written:,} events ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")
    settings = load_settings(environ={}, database_url=dsn, data_dir=str(work / "unify-data"), log_format="console")
    pool = await open_pool(dsn, min_size=1, max_size=2)
    try:
        report = await import_file(
            pool,
            ImportSource.from_path(path),
            fmt="jsonl",
            options=ingest_options(settings),
            chunk_size=chunk_size,
            progress=progress,
        )
        log(f"imported: {report.imported:,} created, {report.invalid} invalid, {report.elapsed_seconds:.1f} s")
        async with pool.acquire() as conn:
            promises = await _promises(conn, seed, now)
            await conn.execute("analyze")
            rows = await conn.fetchval("select count(*) from interaction")
            seconds = time.perf_counter() - started
            await conn.execute(
                "insert into bench_dataset (key, interactions, customers, seed, generated_at, seconds) "
                "values ($1, $2, $3, $4, $5, $6)",
                key,
                interactions,
                customers,
                seed,
                now,
                seconds,
            )
        log(f"{promises:,} promises; data set {key} loaded in {seconds:.0f} s")
    finally:
        await pool.close()
        path.unlink(missing_ok=True)
    return DatasetInfo(key, interactions, customers, seed, True, seconds, rows)


def load_dataset(
    dsn: str, interactions: int = 1_000_000, customers: int = 100_000, seed: int = 7, **options: Any
) -> DatasetInfo:
    """`load_dataset_async` for synchronous callers."""
    return asyncio.run(load_dataset_async(dsn, interactions, customers, seed, **options))


# ---------------------------------------------------------------------------------------------------------------
# Samples for other benchmarks


async def fetch_sample_phones(conn: asyncpg.Connection, n: int, *, seed: int = 0) -> list[str]:
    """`n` phone numbers of loaded customers (linked, not shared), each written in a formatting variant."""
    rows = await conn.fetch(
        "select value from identifier where kind = 'phone' and customer_id is not null and not shared "
        "order by md5(value || $2) limit $1",
        n,
        str(seed),
    )
    rng = random.Random(seed)
    return [written_phone(r["value"], rng) for r in rows]


async def fetch_sample_emails(conn: asyncpg.Connection, n: int, *, seed: int = 0) -> list[str]:
    """`n` email addresses of loaded customers, some in upper case or with a display name."""
    rows = await conn.fetch(
        "select value from identifier where kind = 'email' and customer_id is not null and not shared "
        "order by md5(value || $2) limit $1",
        n,
        str(seed),
    )
    rng = random.Random(seed)
    return [rng.choice([v, v.upper(), f"Customer <{v}>"]) for v in (r["value"] for r in rows)]


async def fetch_sample_customer_ids(conn: asyncpg.Connection, n: int, *, seed: int = 0) -> list[str]:
    """`n` ids of root customers."""
    rows = await conn.fetch(
        "select id from customer where root_id = id order by md5(id::text || $2) limit $1", n, str(seed)
    )
    return [str(r["id"]) for r in rows]


def _sync(fetch: Callable[..., Any], dsn: str, n: int, seed: int) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            return await fetch(conn, n, seed=seed)
        finally:
            await conn.close()

    return asyncio.run(run())


def sample_phones(dsn: str, n: int, *, seed: int = 0) -> list[str]:
    """Phone numbers of loaded customers in formatting variants (see fetch_sample_phones)."""
    return _sync(fetch_sample_phones, dsn, n, seed)


def sample_emails(dsn: str, n: int, *, seed: int = 0) -> list[str]:
    return _sync(fetch_sample_emails, dsn, n, seed)


def sample_customer_ids(dsn: str, n: int, *, seed: int = 0) -> list[str]:
    return _sync(fetch_sample_customer_ids, dsn, n, seed)


def since(days: float) -> datetime:
    """`days` ago, for ranges over the data set (it ends about now)."""
    return datetime.now(UTC) - timedelta(days=days)
