"""Identity resolution on synthetic customers with ground truth: pair precision/recall, streaming and bulk rates.

What is generated
    `--persons` people, each with one or two phone numbers, one or two email addresses, a chat visitor id and (most
    of them) an account number, and a history of 2-18 contacts over 90 days, in time order:
    calls (caller ID unverified or carrier-attested), texts, emails (signed or not; with display names), anonymous
    chats, logged-in chats that name the account, email and phone at `authenticated` (the bridges between a
    person's channels), IVR calls (caller ID + an account authenticated by PIN), anonymous calls, no-reply mail.
    Phones are written as people and platforms write them (`+1 415-555-0100`, `(415) 555 0100`, `tel:+1415…`,
    `whatsapp:+1…`, `415.555.0100`), emails with case and display-name variants. Some people work at companies
    whose switchboard number they all call from (each authenticating with their own account); a few calls are spoof
    attempts: person A's number as unverified caller ID in a call where person B authenticates. Calls get status
    callbacks (a second delivery with a higher revision) and some deliveries are retried as exact duplicates.

Ground truth
    Every interaction has its person, and its evidence-allowed cluster: what a perfect resolver following the rules
    (README, "Identity") could link, computed from the canonical identifiers without unify's code. In file order:
    identifiers an event names at `authenticated` are linked together; a weaker identifier never seen before joins
    them; identifiers of weak-only events link nothing (a person's second email never seen with anything else is a
    cluster of its own). An interaction belongs to the cluster of its strongest identifier; interactions without a
    usable identifier (anonymous callers, no-reply senders) are left out.

What is measured
    1. Pair precision and recall over interactions: two interactions are "together" for unify when
       `interaction_customer(id)` is the same customer, and in the truth when they are in the same allowed cluster
       (an interaction unify left unidentified is alone). Targets: precision ≥ 0.999, recall ≥ 0.98, and no merge
       whose `customer_merge.verification` is below `authenticated`. Computed on the database the streaming run
       filled and on the bulk-imported one.
    2. Streaming: the events POSTed one per request to `POST /v1/interactions` of `unify serve --workers 1`, from 32
       keep-alive connections (each person's events on one connection, in order), and the same bodies (external ids
       made unique) to the bare app of bench/ingest.py, in the same run: events/s and the ratio.
    3. Bulk: `--bulk-events` events (another population, `--bulk-history` contacts per person) written as JSONL,
       imported by `unify.importer.import_file` (what `unify import FILE` runs) into a fresh database, and the same
       rows, already decoded in memory, COPYed by asyncpg's `copy_records_to_table` into one table (source, external
       id, channel, time, event jsonb): events/s of both and the ratio (target ≥ 0.3). The import's time is split by
       step (from what each chunk recorded), with the rows the linking rule had to take one by one (an identifier's
       first sighting next to others, each event naming several customers); rows whose identifiers one customer owns
       already, and the first contacts of identifiers nobody knew that the chunk names only together (a first call,
       a first login naming an account and a phone), are linked set-based. The ceiling of any import that stores
       what this one stores: the rows it stored (raw chunks, interactions, identifiers, customers, links) COPYed
       again into empty copies of their tables, with their indexes, nothing parsed, normalized or resolved:
       events/s and its ratio to the bare COPY.

How
    An embedded PostgreSQL in a temporary directory; unify and the bare app started as bench/ingest.py starts them
    (not with --skip-streaming). Everything is stopped and removed at the end, on Ctrl-C and on error too.

Run
    .venv/bin/python bench/identity.py --quick            # 2,000 persons, 20,000 bulk events
    .venv/bin/python bench/identity.py                    # 5,000 persons streamed, 1,000,000 bulk events
    .venv/bin/python bench/identity.py --skip-streaming --bulk-events 200000 --json

The exit status is 1 when a quality target is missed or stored counts disagree, else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

# bench/ is not a package: this script's directory is on sys.path when it runs, so bench/ingest.py imports as `ingest`.
from ingest import _checkpoint, _create_databases, _read_response, bench_targets, log, report_main, unify_command

PRECISION_TARGET = 0.999
RECALL_TARGET = 0.98
BULK_RATIO_TARGET = 0.3
CONNECTIONS = 32
START = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
SPAN = 90 * 86_400
AREAS = ("415", "212", "312", "646", "718", "213", "305", "617", "206", "512", "303", "404")
FIRST = (
    "Ada Grace Alan Edsger Barbara Donald Margaret Linus Radia Ken Frances John Hedy Tim Katherine Dennis Shafi "
    "Leslie Niklaus Sophie Guido Bjarne Anita Claude Jean Mary Ivan Carol Judea Whitfield"
).split()
LAST = (
    "Lovelace Hopper Turing Dijkstra Liskov Knuth Hamilton Torvalds Perlman Thompson Allen Backus Lamarr Berners "
    "Johnson Ritchie Goldwasser Lamport Wirth Wilson Rossum Stroustrup Borg Shannon Sammet Keller Sutherland Shaw "
    "Pearl Diffie"
).split()
ANONYMOUS = ("anonymous", "+266696687", "restricted", "Unknown", "withheld")
NO_REPLY = ("no-reply@notifications.example.com", "noreply@shop.example.net", "mailer-daemon@mx.example.org")
QUEUES = ("billing", "support", "sales", "retention")
TEXTS = (
    "my bill is wrong again",
    "I was promised a callback yesterday",
    "when will the technician come?",
    "please cancel my order 88123",
    "thanks, that fixed it",
    "I have been on hold for 40 minutes",
)


# ---------------------------------------------------------------------------------------------------------------
# The population and its histories


@dataclass(slots=True)
class Person:
    index: int
    name: str
    phones: list[str]  # E.164
    emails: list[str]  # canonical: lower case
    visitor: str
    account: str | None
    switchboard: str | None = None


@dataclass(slots=True)
class Delivery:
    """One delivery of an event: who it is, what it names, and how it is written."""

    at: float
    person: int  # -1: nobody in particular (no-reply mail)
    kind: str
    key: str  # external id
    channel: str
    # (kind, value as written, canonical value or None for junk, verification)
    identifiers: list[tuple[str, str, str | None, str]]
    revision: int = 0
    status: str = "completed"
    name: str | None = None
    text: str | None = None


def _phone_number(serial: int) -> str:
    area = AREAS[serial % len(AREAS)]
    rest = serial // len(AREAS)
    return f"+1{area}{200 + rest // 10_000 % 800:03d}{rest % 10_000:04d}"


def _written_phone(e164: str, rng: random.Random, channel: str) -> str:
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    choices = [
        f"+1 {area}-{exchange}-{line}",
        f"({area}) {exchange} {line}",
        f"tel:{e164}",
        f"{area}.{exchange}.{line}",
        e164,
        f"1-{area}-{exchange}-{line}",
    ]
    if channel == "sms":
        choices.append(f"whatsapp:{e164}")
    return rng.choice(choices)


def _written_email(address: str, name: str, rng: random.Random) -> str:
    local, domain = address.split("@")
    return rng.choice(
        [
            address,
            f"{local.title()}@{domain.upper()}",
            f"{name} <{address}>",
            f'"{name}" <{local}@{domain.title()}>',
        ]
    )


def make_people(count: int, rng: random.Random) -> list[Person]:
    people = []
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        serial = index
        phones = [_phone_number(2 * serial)] + ([_phone_number(2 * serial + 1)] if rng.random() < 0.3 else [])
        emails = [f"{first}.{last}.{serial}@example.com".lower()]
        if rng.random() < 0.2:
            emails.append(f"{first[0]}{last}{serial}@mail.example.org".lower())
        people.append(
            Person(
                index=index,
                name=f"{first} {last}",
                phones=phones,
                emails=emails,
                visitor=f"web:v{serial:08x}",
                account=f"AC-{serial:08d}" if rng.random() < 0.75 else None,
            )
        )
    # Companies: people whose calls come from one switchboard number, each with an account to authenticate.
    employees = [p for p in people if p.account is not None and rng.random() < 0.06]
    company = 0
    while employees:
        size = rng.randint(3, 6)
        number = _phone_number(10_000_000 + company)
        for person in employees[:size]:
            person.switchboard = number
        employees = employees[size:]
        company += 1
    return people


def _history(
    person: Person, rng: random.Random, spoof_rate: float, counter: Iterator[int], contacts: int
) -> list[Delivery]:
    kinds = {"call": 25, "sms": 18, "email": 22, "chat": 7, "anonymous": 4, "no-reply": 2}
    if person.account:
        kinds |= {"chat-login": 8, "ivr": 10}
    if person.switchboard:
        kinds |= {"switchboard": 25}
    names, weights = list(kinds), list(kinds.values())
    out: list[Delivery] = []
    for _ in range(rng.randint(2, max(2, 2 * contacts - 2))):
        kind = rng.choices(names, weights)[0]
        if person.account and rng.random() < spoof_rate:
            kind = "spoof"  # the victim's number is chosen once the order of all deliveries is known
        at = START + rng.random() * SPAN
        n = next(counter)
        phone = person.phones[0] if len(person.phones) == 1 or rng.random() < 0.8 else person.phones[1]
        email = person.emails[0] if len(person.emails) == 1 or rng.random() < 0.8 else person.emails[1]
        level_caller = rng.choice(["unverified", "carrier_attested"])
        match kind:
            case "call":
                ids = [("phone", _written_phone(phone, rng, "voice"), phone, level_caller)]
                d = Delivery(at, person.index, kind, f"call-{n}", "voice", ids)
            case "sms":
                ids = [("phone", _written_phone(phone, rng, "sms"), phone, "unverified")]
                d = Delivery(at, person.index, kind, f"sms-{n}", "sms", ids, status="received")
                d.text = rng.choice(TEXTS)
            case "email":
                level = "signed" if rng.random() < 0.7 else "unverified"
                ids = [("email", _written_email(email, person.name, rng), email, level)]
                d = Delivery(at, person.index, kind, f"mail-{n}", "email", ids, status="received", name=person.name)
                d.text = rng.choice(TEXTS)
            case "chat":
                ids = [("chat", person.visitor, person.visitor, "unverified")]
                d = Delivery(at, person.index, kind, f"chat-{n}", "chat", ids)
                d.text = rng.choice(TEXTS)
            case "chat-login":
                assert person.account is not None
                ids = [
                    ("account", person.account, person.account, "authenticated"),
                    ("email", email, email, "authenticated"),
                    ("phone", _written_phone(phone, rng, "chat"), phone, "authenticated"),
                    ("chat", person.visitor, person.visitor, "unverified"),
                ]
                d = Delivery(at, person.index, kind, f"chat-{n}", "chat", ids, name=person.name)
                d.text = rng.choice(TEXTS)
            case "ivr":
                assert person.account is not None
                ids = [
                    ("phone", _written_phone(phone, rng, "voice"), phone, "unverified"),
                    ("account", person.account, person.account, "authenticated"),
                ]
                d = Delivery(at, person.index, kind, f"call-{n}", "voice", ids)
            case "switchboard":
                assert person.account is not None and person.switchboard is not None
                sb = person.switchboard
                ids = [
                    ("phone", _written_phone(sb, rng, "voice"), sb, "unverified"),
                    ("account", person.account, person.account, "authenticated"),
                ]
                d = Delivery(at, person.index, kind, f"call-{n}", "voice", ids)
            case "spoof":
                assert person.account is not None
                ids = [("account", person.account, person.account, "authenticated")]
                d = Delivery(at, person.index, kind, f"call-{n}", "voice", ids)
            case "anonymous":
                ids = [("phone", rng.choice(ANONYMOUS), None, "unverified")]
                d = Delivery(at, person.index, kind, f"call-{n}", "voice", ids)
            case _:
                ids = [("email", rng.choice(NO_REPLY), None, "signed")]
                d = Delivery(at, -1, kind, f"mail-{n}", "email", ids, status="received")
                d.text = "Your order has shipped"
        out.append(d)
        if d.channel == "voice" and rng.random() < 0.3:
            # The platform first reported the call ringing, then sent its status callback (higher revision).
            d.revision, d.status = 2, "completed"
            out.append(Delivery(at - 30, d.person, kind, d.key, "voice", d.identifiers, revision=1, status="ringing"))
        if rng.random() < 0.02:
            out.append(
                Delivery(
                    at + 5, d.person, d.kind, d.key, d.channel, d.identifiers, d.revision, d.status, d.name, d.text
                )
            )
    return out


def histories(people: list[Person], rng: random.Random, spoof_rate: float, contacts: int = 10) -> list[Delivery]:
    """Every delivery of every person, in time order, spoof attempts given a victim: a number first seen at least
    2,000 deliveries earlier, of someone else."""
    counter = iter(range(10**12))
    deliveries = [d for p in people for d in _history(p, rng, spoof_rate, counter, contacts)]
    deliveries.sort(key=lambda d: d.at)
    seen: list[tuple[str, int]] = []
    known: set[str] = set()
    for d in deliveries:
        if d.kind == "spoof" and len(d.identifiers) == 1:
            candidates = len(seen) - 2_000
            victim = seen[rng.randrange(candidates)] if candidates > 0 else None
            if victim is None or victim[1] == d.person:
                d.kind = "ivr-without-caller-id"
            else:
                d.identifiers.insert(0, ("phone", _written_phone(victim[0], rng, "voice"), victim[0], "unverified"))
        for kind, _, value, _ in d.identifiers:
            if kind == "phone" and value is not None and value not in known and d.kind != "spoof":
                known.add(value)
                seen.append((value, d.person))
    return deliveries


# ---------------------------------------------------------------------------------------------------------------
# Ground truth


class Clusters:
    """Union-find over canonical identifiers (`kind:value`)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, node: str) -> str:
        parent = self.parent.setdefault(node, node)
        if parent != node:
            root = self.find(parent)
            self.parent[node] = root
            return root
        return node

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


_RANK = {"unverified": 0, "carrier_attested": 1, "signed": 2, "authenticated": 3}


def ground_truth(deliveries: list[Delivery]) -> dict[str, tuple[int, str | None]]:
    """Interaction key → (person, allowed cluster); the cluster is None for interactions without a usable
    identifier."""
    clusters = Clusters()
    seen: set[str] = set()
    strongest: dict[str, str | None] = {}
    persons: dict[str, int] = {}
    for d in deliveries:
        usable = [(f"{kind}:{value}", level) for kind, _, value, level in d.identifiers if value is not None]
        strong = [node for node, level in usable if level == "authenticated"]
        for node, _ in usable:
            clusters.find(node)
        if strong:
            for node in strong[1:]:
                clusters.union(strong[0], node)
            for node, level in usable:
                if level != "authenticated" and node not in seen:
                    clusters.union(strong[0], node)
        seen.update(node for node, _ in usable)
        key = f"{source_of(d.channel)}/{d.key}"
        persons[key] = d.person
        best = max(usable, key=lambda item: _RANK[item[1]])[0] if usable else None
        strongest.setdefault(key, best)
    return {key: (persons[key], None if node is None else clusters.find(node)) for key, node in strongest.items()}


# ---------------------------------------------------------------------------------------------------------------
# Events as JSON


SOURCES = {"voice": "pbx", "sms": "sms-gateway", "email": "mailer", "chat": "webchat"}


def source_of(channel: str) -> str:
    return SOURCES[channel]


def _iso(at: float) -> str:
    return datetime.fromtimestamp(round(at), UTC).isoformat().replace("+00:00", "Z")


_encoder = msgspec.json.Encoder()


def event_json(d: Delivery) -> bytes:
    """The native event of a delivery (about 400-600 bytes)."""
    event: dict[str, Any] = {
        "source": source_of(d.channel),
        "external_id": d.key,
        "channel": d.channel,
        "direction": "inbound",
        "occurred_at": _iso(d.at),
        "status": d.status,
        "revision": d.revision,
        "customer": {
            "identifiers": [
                {"kind": kind, "value": written, "verification": level} for kind, written, _, level in d.identifiers
            ],
        },
    }
    if d.name:
        event["customer"]["display_name"] = d.name
    serial = int(d.key.rsplit("-", 1)[1])
    queue = QUEUES[serial % len(QUEUES)]
    match d.channel:
        case "voice":
            event["endpoint"] = {"kind": "phone", "value": "+18005550199"}
            event["queue"] = queue
            if d.status == "completed":
                event |= {
                    "answered_at": _iso(d.at + 60),
                    "ended_at": _iso(d.at + 400),
                    "agent": f"agent.{serial % 40}",
                    "queue_wait_seconds": 60,
                    "talk_seconds": 340,
                    "reason": queue,
                }
            event["details"] = {"type": "voice", "stir_verstat": "TN-Validation-Passed-A"}
        case "sms":
            event["endpoint"] = {"kind": "phone", "value": "+18005550123"}
            event["text"] = d.text
            event["details"] = {"type": "sms", "segments": 1}
        case "email":
            event["endpoint"] = {"kind": "email", "value": "support@unify.example"}
            event["subject"] = "Re: your ticket"
            event["text"] = d.text
            event["details"] = {"type": "email", "message_id": f"<{d.key}@mail.example>", "dkim": "pass"}
        case _:
            event["agent"] = f"agent.{serial % 40}"
            event["text"] = d.text
            event["details"] = {"type": "chat", "platform": "web", "conversation_id": d.key}
    return _encoder.encode(event)


@dataclass
class Dataset:
    deliveries: int
    interactions: int
    truth: dict[str, tuple[int, str | None]]
    people: int
    spoofs: int
    anonymous: int


def build(
    persons: int, seed: int, spoof_rate: float, limit: int | None = None, contacts: int = 10
) -> tuple[list[Delivery], Dataset]:
    """The deliveries of `persons` people in time order (the first `limit` of them), with their ground truth."""
    rng = random.Random(seed)
    people = make_people(persons, rng)
    deliveries = histories(people, rng, spoof_rate, contacts)[:limit]
    truth = ground_truth(deliveries)
    return deliveries, Dataset(
        deliveries=len(deliveries),
        interactions=len(truth),
        truth=truth,
        people=persons,
        spoofs=sum(1 for d in deliveries if d.kind == "spoof"),
        anonymous=sum(1 for _, cluster in truth.values() if cluster is None),
    )


# ---------------------------------------------------------------------------------------------------------------
# Quality


def pair_scores(truth: dict[str, tuple[int, str | None]], resolved: dict[str, Any]) -> dict[str, Any]:
    """Pair precision and recall of `resolved` (interaction key → customer or None) against the allowed clusters,
    over the interactions the truth can place (an interaction unify left unidentified counts as alone)."""
    cells: Counter[tuple[Any, str]] = Counter()
    by_customer: Counter[Any] = Counter()
    by_cluster: Counter[str] = Counter()
    persons_per_customer: dict[Any, set[int]] = {}
    unidentified = missing = 0
    for key, (person, cluster) in truth.items():
        if cluster is None:
            continue
        if key not in resolved:
            missing += 1
            continue
        customer = resolved[key]
        if customer is None:
            unidentified += 1
            customer = ("alone", key)
        cells[(customer, cluster)] += 1
        by_customer[customer] += 1
        by_cluster[cluster] += 1
        persons_per_customer.setdefault(customer, set()).add(person)

    def pairs(counter: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    together, predicted, actual = pairs(cells), pairs(by_customer), pairs(by_cluster)
    return {
        "interactions_scored": sum(by_cluster.values()),
        "precision": together / predicted if predicted else 1.0,
        "recall": together / actual if actual else 1.0,
        "left_unidentified": unidentified,
        "not_stored": missing,
        "customers": len([c for c in by_customer if not (isinstance(c, tuple) and c[0] == "alone")]),
        "allowed_clusters": len(by_cluster),
        "customers_spanning_persons": sum(1 for people in persons_per_customer.values() if len(people) > 1),
    }


async def quality(dsn: str, truth: dict[str, tuple[int, str | None]]) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select source || '/' || external_id as key, interaction_customer(id) as customer from interaction"
        )
        merges = await conn.fetchrow(
            """select count(*) as merges,
                      count(*) filter (where verification_rank(verification)
                                             < verification_rank('authenticated')) as weak_merges
               from customer_merge where undone_at is null"""
        )
        suggestions = await conn.fetchval("select count(*) from merge_suggestion")
        shared = await conn.fetchval("select count(*) from identifier where shared")
    finally:
        await conn.close()
    scores = pair_scores(truth, {r["key"]: r["customer"] for r in rows})
    return {
        **scores,
        "stored": len(rows),
        "expected": len(truth),
        "merges": merges["merges"],
        "merges_below_authenticated": merges["weak_merges"],
        "suggestions": suggestions,
        "shared_identifiers": shared,
        "meets_target": scores["precision"] >= PRECISION_TARGET
        and scores["recall"] >= RECALL_TARGET
        and merges["weak_merges"] == 0
        and len(rows) == len(truth),
    }


# ---------------------------------------------------------------------------------------------------------------
# Streaming through the API


async def _send_all(host: str, port: int, path: str, token: str | None, lanes: list[list[bytes]]) -> tuple[int, int]:
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    prefix = head.encode()
    ok = failed = 0

    async def lane(bodies: list[bytes]) -> None:
        nonlocal ok, failed
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for body in bodies:
                writer.write(prefix + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                status, keep_alive = await _read_response(reader)
                if 200 <= status < 300:
                    ok += 1
                else:
                    failed += 1
                if not keep_alive:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    await asyncio.gather(*(lane(bodies) for bodies in lanes))
    return ok, failed


def stream(port: int, path: str, token: str | None, lanes: list[list[bytes]]) -> dict[str, Any]:
    started = time.perf_counter()
    ok, failed = asyncio.run(_send_all("127.0.0.1", port, path, token, lanes))
    elapsed = time.perf_counter() - started
    return {"events": ok + failed, "ok": ok, "non_2xx": failed, "seconds": round(elapsed, 2), "per_s": ok / elapsed}


def lanes_by_person(deliveries: list[Delivery], bodies: list[bytes], count: int) -> list[list[bytes]]:
    """Each person's deliveries on one connection, in time order (what a platform with per-customer ordering does)."""
    lanes: list[list[bytes]] = [[] for _ in range(count)]
    for d, body in zip(deliveries, bodies, strict=True):
        lanes[hash((d.person, d.key if d.person < 0 else 0)) % count].append(body)
    return lanes


def _unique_for_bare(bodies: list[bytes]) -> list[bytes]:
    """The same bodies for the bare app, whose table holds each external id once: retries and status callbacks get
    an external id of their own (a few bytes longer)."""
    return [body.replace(b'"external_id":"', f'"external_id":"{i}~'.encode(), 1) for i, body in enumerate(bodies)]


def run_streaming(args: argparse.Namespace) -> dict[str, Any]:
    import subprocess

    deliveries, data = build(args.persons, args.seed, args.spoof_rate)
    bodies = [event_json(d) for d in deliveries]
    log(
        f"streaming set: {data.people} persons, {data.deliveries} deliveries of {data.interactions} interactions "
        f"({data.spoofs} spoof attempts, {data.anonymous} without a usable identifier)"
    )
    with bench_targets("unify-bench-identity-") as t:
        created = subprocess.run(
            [*unify_command(), "keys", "create", "--scope", "ingest", "--name", "bench"],
            env=t.unify_env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = created.stdout.strip().splitlines()[-1]
        asyncio.run(_checkpoint(t.admin_dsn))
        log(f"bare app: {len(bodies)} requests over {CONNECTIONS} connections")
        bare = stream(t.bare_port, "/", None, lanes_by_person(deliveries, _unique_for_bare(bodies), CONNECTIONS))
        asyncio.run(_checkpoint(t.admin_dsn))
        log(f"unify: {len(bodies)} requests over {CONNECTIONS} connections")
        unify = stream(t.unify_port, "/v1/interactions", token, lanes_by_person(deliveries, bodies, CONNECTIONS))
        t.check_alive()
        log("scoring the streamed database")
        scores = asyncio.run(quality(t.unify_dsn, data.truth))
    return {
        "persons": data.people,
        "deliveries": data.deliveries,
        "interactions": data.interactions,
        "spoof_attempts": data.spoofs,
        "unify": unify,
        "bare": bare,
        "ratio": unify["per_s"] / bare["per_s"] if bare["per_s"] else 0.0,
        "quality": scores,
    }


# ---------------------------------------------------------------------------------------------------------------
# Bulk import against a bare COPY


class _BareRow(msgspec.Struct):
    source: str
    external_id: str
    channel: str
    occurred_at: datetime


_BARE_TABLE = """
create table bare_event (
    source      text        not null,
    external_id text        not null,
    channel     text        not null,
    occurred_at timestamptz not null,
    event       jsonb       not null
)
"""


async def _bare_copy(dsn: str, path: Path) -> tuple[int, float]:
    decoder = msgspec.json.Decoder(_BareRow)
    records = []
    with path.open("rb") as lines:
        for line in lines:
            row = decoder.decode(line)
            records.append((row.source, row.external_id, row.channel, row.occurred_at, line.decode()))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_BARE_TABLE)
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "bare_event", records=records, columns=["source", "external_id", "channel", "occurred_at", "event"]
        )
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return len(records), elapsed


STORED_TABLES = ("raw_event", "interaction", "identifier", "customer", "interaction_identifier")
"""What an import stores (the raw chunks, the interactions, the identities and their links), in the order written."""


async def _stored_copy(dsn: str, admin_dsn: str) -> dict[str, Any]:
    """The rows the import stored, COPYed again by asyncpg into empty copies of their tables (same columns, defaults,
    constraints and indexes, no foreign keys): the seconds that writing them alone takes, with nothing parsed,
    normalized or resolved. An import that stores these rows cannot be faster than their sum."""
    conn = await asyncpg.connect(dsn)
    tables: dict[str, Any] = {}
    try:
        for table in STORED_TABLES:
            columns = [
                r["attname"]
                for r in await conn.fetch(
                    "select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 "
                    "and not attisdropped and attgenerated = '' order by attnum",
                    table,
                )
            ]
            listed = ", ".join(f'"{c}"' for c in columns)
            records = [tuple(r) for r in await conn.fetch(f"select {listed} from {table}")]
            indexes = await conn.fetchval("select count(*) from pg_index where indrelid = $1::regclass", table)
            await conn.execute(f"create table bench_copy_{table} (like {table} including all)")
            await _checkpoint(admin_dsn)
            started = time.perf_counter()
            await conn.copy_records_to_table(f"bench_copy_{table}", records=records, columns=columns)
            seconds = time.perf_counter() - started
            await conn.execute(f"drop table bench_copy_{table}")
            tables[table] = {"rows": len(records), "indexes": indexes, "seconds": round(seconds, 3)}
    finally:
        await conn.close()
    return {"tables": tables, "seconds": sum(t["seconds"] for t in tables.values())}


async def _import(dsn: str, path: Path, data_dir: Path, chunk_size: int) -> tuple[Any, float, dict[str, Any]]:
    from unify.importer import ImportSource, import_file
    from unify.privacy.setup import ingest_options
    from unify.settings import load_settings
    from unify.store import load_queries, migrate, open_pool

    settings = load_settings(environ={}, database_url=dsn, data_dir=str(data_dir), log_format="console")
    options = ingest_options(settings)
    pool = await open_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        started = time.perf_counter()
        report = await import_file(
            pool, ImportSource.from_path(path), fmt="jsonl", options=options, chunk_size=chunk_size
        )
        elapsed = time.perf_counter() - started
        async with pool.acquire() as conn:
            phases = await conn.fetchrow(load_queries("importer")["chunk_totals"], report.import_id)
        return report, elapsed, {name: int(value or 0) for name, value in phases.items()}
    finally:
        await pool.close()


def write_jsonl(deliveries: list[Delivery], path: Path) -> int:
    with path.open("wb") as out:
        for d in deliveries:
            out.write(event_json(d) + b"\n")
    return path.stat().st_size


@contextmanager
def postgres(prefix: str) -> Iterator[tuple[Path, str]]:
    """An embedded PostgreSQL of its own in a temporary directory (when the streaming part did not start one)."""
    from unify.embedded import start_server

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    log(f"starting embedded PostgreSQL in {workdir}")
    yield workdir, start_server(workdir / "pgdata", cleanup="delete")


def run_bulk(args: argparse.Namespace) -> dict[str, Any]:
    from unify.embedded import dsn_for_database

    persons = max(1, args.bulk_events // args.bulk_history)
    deliveries, data = build(
        persons, args.seed + 1, args.spoof_rate, limit=args.bulk_events, contacts=args.bulk_history
    )
    events = len(deliveries)
    with postgres("unify-bench-bulk-") as (workdir, admin_dsn):
        path = workdir / "events.jsonl"
        size = write_jsonl(deliveries, path)
        del deliveries
        log(f"bulk set: {len(data.truth)} interactions in {events} lines, {size / 1e6:.0f} MB: {path.name}")
        asyncio.run(_create_databases(admin_dsn, ["bulk", "bare"]))
        bulk_dsn, bare_dsn = dsn_for_database(admin_dsn, "bulk"), dsn_for_database(admin_dsn, "bare")
        asyncio.run(_checkpoint(admin_dsn))
        log("bare COPY of the same rows")
        rows, bare_seconds = asyncio.run(_bare_copy(bare_dsn, path))
        asyncio.run(_checkpoint(admin_dsn))
        log(f"unify import of {path.name}")
        report, import_seconds, phases = asyncio.run(_import(bulk_dsn, path, workdir / "unify-data", args.chunk_size))
        log("scoring the imported database")
        scores = asyncio.run(quality(bulk_dsn, data.truth))
        log("the stored rows COPYed again into copies of their tables")
        stored = asyncio.run(_stored_copy(bulk_dsn, admin_dsn))
    import_rate, bare_rate = events / import_seconds, rows / bare_seconds
    stored["per_s"] = events / stored["seconds"] if stored["seconds"] else 0.0
    stored["ratio"] = stored["per_s"] / bare_rate
    return {
        "events": events,
        "interactions": len(data.truth),
        "persons": persons,
        "file_mb": round(size / 1e6, 1),
        "chunk_size": args.chunk_size,
        "import": {
            "seconds": round(import_seconds, 2),
            "per_s": import_rate,
            "report": msgspec.to_builtins(report),
            "phases": phases,
        },
        "bare_copy": {"seconds": round(bare_seconds, 2), "per_s": bare_rate},
        "stored_copy": stored,
        "ratio": import_rate / bare_rate,
        "target_ratio": BULK_RATIO_TARGET,
        "meets_target": import_rate / bare_rate >= BULK_RATIO_TARGET,
        "quality": scores,
    }


# ---------------------------------------------------------------------------------------------------------------
# Report


def print_report(report: dict[str, Any]) -> None:
    def verdict(ok: bool) -> str:
        return "meets" if ok else "BELOW"

    def quality_lines(name: str, q: dict[str, Any]) -> None:
        print(
            f"{name:<10} precision {q['precision']:.5f} ({verdict(q['precision'] >= PRECISION_TARGET)} ≥ "
            f"{PRECISION_TARGET})  recall {q['recall']:.5f} ({verdict(q['recall'] >= RECALL_TARGET)} ≥ "
            f"{RECALL_TARGET})  merges below authenticated: {q['merges_below_authenticated']}"
        )
        print(
            f"{'':<10} {q['interactions_scored']} interactions scored, {q['customers']} customers for "
            f"{q['allowed_clusters']} allowed clusters, {q['left_unidentified']} left unidentified, "
            f"{q['customers_spanning_persons']} customers spanning persons; {q['merges']} merges, "
            f"{q['suggestions']} suggestions, {q['shared_identifiers']} shared identifiers; stored {q['stored']} "
            f"interactions of {q['expected']} sent"
        )

    print(f"\nidentity benchmark (seed {report['seed']})")
    streaming = report.get("streaming")
    if streaming:
        print(
            f"\nstreaming: {streaming['deliveries']} deliveries ({streaming['interactions']} interactions, "
            f"{streaming['persons']} persons, {streaming['spoof_attempts']} spoof attempts), one per request, "
            f"{CONNECTIONS} connections"
        )
        print(f"{'target':<10} {'events/s':>10} {'seconds':>9} {'non-2xx':>8}")
        for name in ("bare", "unify"):
            t = streaming[name]
            print(f"{name:<10} {t['per_s']:>10.1f} {t['seconds']:>9.2f} {t['non_2xx']:>8}")
        print(f"ratio (unify / bare app) = {streaming['ratio']:.2f}")
        quality_lines("streamed", streaming["quality"])
    bulk = report.get("bulk")
    if bulk:
        imported = bulk["import"]["report"]
        print(
            f"\nbulk: {bulk['events']} events ({bulk['interactions']} interactions, {bulk['persons']} persons, "
            f"{bulk['file_mb']} MB of JSONL), chunks of {bulk['chunk_size']}"
        )
        print(f"{'target':<10} {'events/s':>10} {'seconds':>9}")
        print(f"{'bare COPY':<10} {bulk['bare_copy']['per_s']:>10.1f} {bulk['bare_copy']['seconds']:>9.2f}")
        print(f"{'import':<10} {bulk['import']['per_s']:>10.1f} {bulk['import']['seconds']:>9.2f}")
        print(
            f"ratio (import / bare COPY) = {bulk['ratio']:.2f}  ({verdict(bulk['meets_target'])} the target of ≥ "
            f"{bulk['target_ratio']})"
        )
        stored = bulk["stored_copy"]
        print(
            f"ceiling: the rows the import stored, COPYed again into copies of their tables with their indexes, take "
            f"{stored['seconds']:.2f} s ({stored['per_s']:.1f} events/s, ratio {stored['ratio']:.2f} to the bare "
            "COPY) with nothing parsed or resolved: "
            + ", ".join(
                f"{name} {t['rows']} rows ({t['indexes']} indexes) {t['seconds']:.2f} s"
                for name, t in stored["tables"].items()
            )
        )
        print(
            f"import report: {imported['imported']} created, {imported['updated']} updated, "
            f"{imported['duplicates']} duplicates, {imported['unidentified']} unidentified, {imported['invalid']} "
            f"invalid, {imported['customers_created']} customers, {imported['suggestions']} suggestions"
        )
        p = bulk["import"]["phases"]
        linked = p["rows_linked"] or 0
        print(
            f"import phases: set-based {p['rows_recorded']} rows of known identifiers and {p['rows_first']} first "
            f"contacts, {linked} through the linking rule "
            f"({p['linked_new']} naming a new identifier, {p['linked_bridge']} naming several customers); ms: "
            f"prepare {p['prepare_ms']} (in a thread), raw+COPY {p['stage_ms']}, upsert {p['upsert_ms']}, "
            f"classify {p['classify_ms']}, "
            f"rule {p['link_ms']} ({(p['link_ms'] or 0) / max(linked, 1):.2f} per row), set-based record "
            f"{p['record_ms']} (with the first contacts), apply total {p['apply_ms']}"
        )
        quality_lines("imported", bulk["quality"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=5_000, help="persons in the streamed set (default 5,000)")
    parser.add_argument(
        "--bulk-events", type=int, default=1_000_000, help="events in the bulk file (default 1,000,000; 0: skip)"
    )
    parser.add_argument(
        "--bulk-history",
        type=int,
        default=10,
        help="contacts per person in the bulk set, on average (default 10; 2 to 2N-2 each, plus status callbacks and "
        "retries): fewer means more first contacts for the linking rule",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--spoof-rate", type=float, default=0.004, help="share of calls that are spoof attempts")
    parser.add_argument("--chunk-size", type=int, default=5000, help="import chunk size (default 5000)")
    parser.add_argument("--skip-streaming", action="store_true", help="only the bulk import")
    parser.add_argument("--quick", action="store_true", help="2,000 persons and 20,000 bulk events")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args(argv)
    if args.quick:
        args.persons, args.bulk_events = 2_000, 20_000
    if args.persons < 10 or args.bulk_events < 0 or args.bulk_history < 1:
        parser.error("--persons must be at least 10, --bulk-events at least 0, --bulk-history at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")
    from unify.logging import configure_logging

    configure_logging("console", "warning")

    def run() -> dict[str, Any]:
        report: dict[str, Any] = {"seed": args.seed}
        if not args.skip_streaming:
            report["streaming"] = run_streaming(args)
        if args.bulk_events:
            report["bulk"] = run_bulk(args)
        return report

    def ok(report: dict[str, Any]) -> bool:
        parts = [report[name] for name in ("streaming", "bulk") if name in report]
        return all(part["quality"]["meets_target"] for part in parts) and all(
            part["unify"]["non_2xx"] == 0 for part in parts if "unify" in part
        )

    return report_main(run, as_json=args.json, show=print_report, ok=ok)


if __name__ == "__main__":
    sys.exit(main())
