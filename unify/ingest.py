"""Ingest: keep the raw delivery, then apply its events idempotently, in one transaction.

The raw body and the interactions it produced are committed together, so a 2xx always means both are durable.
When a delivery is rejected (too large, wrong content type, invalid) or applying it fails, the raw body is written
on its own with the error, so nothing a client sent is lost and it can be replayed after a fix."""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol
from uuid import UUID

import asyncpg
import msgspec
import structlog

from schemas import FieldError, IngestBatchResult, IngestResult, InteractionEvent
from unify.errors import BadRequest, PayloadTooLarge, Unauthorized, UnifyError, UnsupportedMediaType
from unify.identity import IdentityPolicy, normalize_identifiers
from unify.store import DATABASE_UNREACHABLE, load_queries

log = structlog.get_logger("unify.ingest")
_Q = load_queries("ingest")

RawStatus = Literal["received", "processed", "rejected", "unverified", "failed"]
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_UNREACHABLE = DATABASE_UNREACHABLE  # nothing can be kept (not even the raw body); the client retries
_ATTEMPTS = 3


@dataclass(frozen=True)
class RawDelivery:
    """Exactly what a client sent: the route, the headers, and the body bytes (cut at the size limit)."""

    route: str
    content_type: str | None
    headers: list[tuple[str, str]]
    body: bytes
    body_size: int
    truncated: bool = False


Redactor = Callable[[InteractionEvent], tuple[InteractionEvent, dict[str, int]]]


class Sealer(Protocol):
    """Encrypts raw bodies at rest (unify.privacy.vault.RawKeyring)."""

    def encrypt(self, plaintext: bytes, *, associated_data: bytes = b"") -> tuple[str, bytes]: ...


@dataclass(frozen=True)
class IngestOptions:
    """How deliveries are stored: the phone region for numbers without a country code, the key that seals raw
    bodies (None: kept in the clear), the redactor that masks card numbers before texts are stored, and the
    identity policy (normalization rules, merge level, limits, shared threshold)."""

    default_region: str = "US"
    sealer: Sealer | None = None
    redact: Redactor | None = None
    identity: IdentityPolicy = field(default_factory=IdentityPolicy)
    group_commit: GroupCommit | None = None  # one-event deliveries stored together under load (the server's)

    def in_region(self, region: str) -> IngestOptions:
        return self if region == self.default_region else replace(self, default_region=region)


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    results: list[IngestResult] = field(default_factory=list)

    def add(self, result: IngestResult) -> None:
        self.results.append(result)
        match result.outcome:
            case "created":
                self.created += 1
            case "updated":
                self.updated += 1
            case "duplicate":
                self.duplicates += 1

    def batch_result(self, raw_event_id: int) -> IngestBatchResult:
        return IngestBatchResult(
            raw_event_id=raw_event_id,
            results=self.results,
            created=self.created,
            updated=self.updated,
            duplicates=self.duplicates,
        )


async def store_raw(
    pool: asyncpg.Pool,
    raw: RawDelivery,
    status: RawStatus,
    error: UnifyError | str | None = None,
    *,
    options: IngestOptions,
) -> int:
    """Write a raw delivery on its own (the rejected and failed paths). Returns its id."""
    async with pool.acquire() as conn:
        return await _insert_raw(conn, raw, status, error, options)


def _stored_headers(raw: RawDelivery) -> list[list[str]]:
    return [[name, value.replace("\x00", "\ufffd")] for name, value in raw.headers]


def _sealed_body(raw: RawDelivery, options: IngestOptions) -> tuple[str | None, bytes]:
    """The body as stored: encrypted when a key is configured (bound to its route), else as received."""
    if options.sealer is None:
        return None, raw.body
    return options.sealer.encrypt(raw.body, associated_data=raw.route.encode())


def event_key(event: InteractionEvent) -> str:
    """How a raw delivery names the events it carried (sources never contain '/')."""
    return f"{event.source}/{event.external_id}"


def error_payload(error: UnifyError | str | None) -> dict[str, object] | None:
    """A raw delivery's `error` column: the problem's title, detail and field errors (a string: an internal error)."""
    if isinstance(error, UnifyError):
        _without_nul(error)
        return {"title": error.title, "detail": error.detail, "errors": error.errors}
    if error is not None:
        return {"title": "Internal error", "detail": error.replace("\x00", "\ufffd")}
    return None


def _without_nul(error: UnifyError) -> None:
    """A message may quote what the client sent; PostgreSQL cannot store a NUL character, so it is shown as U+FFFD
    (in the stored error and in the problem alike)."""
    error.detail = error.detail.replace("\x00", "\ufffd")
    error.errors = [
        FieldError(field=e.field.replace("\x00", "\ufffd"), message=e.message.replace("\x00", "\ufffd"))
        for e in error.errors
    ]


async def _insert_raw(
    conn: asyncpg.Connection,
    raw: RawDelivery,
    status: RawStatus,
    error: UnifyError | str | None,
    options: IngestOptions,
    event_keys: list[str] | None = None,
) -> int:
    key_id, body = _sealed_body(raw, options)
    return await conn.fetchval(
        _Q["insert_raw_event"],
        raw.route,
        raw.content_type,
        _stored_headers(raw),
        body,
        raw.body_size,
        raw.truncated,
        status,
        error_payload(error),
        key_id,
        event_keys,
    )


async def reject(pool: asyncpg.Pool, raw: RawDelivery, error: UnifyError, options: IngestOptions) -> UnifyError:
    """Keep the raw delivery with its error (a failed signature flagged `unverified`), and return the error carrying
    the raw event id to raise."""
    status: RawStatus = "unverified" if isinstance(error, Unauthorized) else "rejected"
    _without_nul(error)
    error.raw_event_id = await store_raw(pool, raw, status, error, options=options)
    log.info("delivery_rejected", route=raw.route, raw_event_id=error.raw_event_id, reason=error.title)
    return error


# ---------------------------------------------------------------------------------------------------------------
# Decoding the native JSON body

_event_decoder = msgspec.json.Decoder(InteractionEvent)
_raw_list_decoder = msgspec.json.Decoder(list[msgspec.Raw])
# msgspec raises RecursionError (not a MsgspecError) for JSON nested deeper than it decodes: malformed too.
_UNDECODABLE = (msgspec.MsgspecError, RecursionError)
_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)


def _field_error(exc: msgspec.MsgspecError | RecursionError, prefix: str) -> FieldError:
    match = _AT_PATH.match(str(exc))
    assert match is not None
    path = match["path"] or "$"
    if isinstance(exc, msgspec.ValidationError) and match["path"] is None:
        # Errors raised by __post_init__ carry no path; they name their field in backticks.
        named = re.search(r"`([a-z_]+)`", match["message"])
        path = f"$.{named[1]}" if named else "$"
    message = match["message"]
    if not isinstance(exc, msgspec.ValidationError):
        message = f"malformed JSON: {message}"
    return FieldError(field=prefix + path[1:] if path.startswith("$") else path, message=message)


def decode_native_events(body: bytes, *, max_batch: int) -> tuple[list[InteractionEvent], bool]:
    """Decode one event (a JSON object) or a batch (a JSON array). Returns the events and whether it was a batch.
    Raises BadRequest naming every invalid field (for a batch, each invalid element)."""
    stripped = body.lstrip()
    if not stripped:
        raise BadRequest(
            "the body is empty; send one interaction event or an array of them",
            errors=[FieldError(field="$", message="empty body")],
        )
    if stripped[:1] != b"[":
        try:
            event = _event_decoder.decode(body)
        except _UNDECODABLE as exc:
            error = _field_error(exc, "$")
            raise BadRequest(f"invalid interaction event: {error.message} at {error.field}", errors=[error]) from None
        if _MAY_HOLD_NUL in body:
            _reject_nul(event, "$")
        return [event], False
    try:
        items = _raw_list_decoder.decode(body)
    except _UNDECODABLE as exc:
        error = _field_error(exc, "$")
        raise BadRequest(f"invalid batch: {error.message}", errors=[error]) from None
    if not items:
        raise BadRequest("the batch is empty", errors=[FieldError(field="$", message="empty array")])
    if len(items) > max_batch:
        raise BadRequest(
            f"a batch holds at most {max_batch} events; this one has {len(items)}",
            errors=[FieldError(field="$", message=f"more than {max_batch} items")],
        )
    events: list[InteractionEvent] = []
    errors: list[FieldError] = []
    may_hold_nul = _MAY_HOLD_NUL in body
    for index, item in enumerate(items):
        try:
            event = _event_decoder.decode(item)
            if may_hold_nul:
                _reject_nul(event, f"$[{index}]")
            events.append(event)
        except _UNDECODABLE as exc:
            errors.append(_field_error(exc, f"$[{index}]"))
        except BadRequest as exc:
            errors.extend(exc.errors)
    if errors:
        summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
        raise BadRequest(f"{len(errors)} of {len(items)} events are invalid ({summary})", errors=errors)
    return events, True


# JSON can only carry a NUL character as this escape (raw control characters are invalid in JSON strings).
_MAY_HOLD_NUL = b"\\u0000"


def _reject_nul(event: InteractionEvent, prefix: str) -> None:
    """PostgreSQL text cannot hold NUL characters; say which field has one rather than fail later."""

    def walk(value: object, path: str) -> str | None:
        if isinstance(value, str):
            return path if "\x00" in value else None
        if isinstance(value, dict):
            for key, item in value.items():
                found = walk(key, f"{path}.{key}") or walk(item, f"{path}.{key}")
                if found:
                    return found
        if isinstance(value, list):
            for index, item in enumerate(value):
                found = walk(item, f"{path}[{index}]")
                if found:
                    return found
        return None

    where = walk(msgspec.to_builtins(event), prefix)
    if where:
        raise BadRequest(
            f"NUL characters are not allowed in text ({where})",
            errors=[FieldError(field=where, message="contains a NUL character")],
        )


def validate_event(event: InteractionEvent) -> InteractionEvent:
    """Check an event built in code (a connector's) against every limit of the schema, as decoding would.
    Raises BadRequest naming the field."""
    encoded = msgspec.json.encode(event)
    try:
        checked = _event_decoder.decode(encoded)
    except msgspec.ValidationError as exc:
        error = _field_error(exc, "$")
        raise BadRequest(
            f"the delivery makes an invalid event: {error.message} at {error.field}", errors=[error]
        ) from None
    if _MAY_HOLD_NUL in encoded:
        _reject_nul(checked, "$")
    return checked


def check_json_content_type(content_type: str | None) -> None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaType(
            f"send interaction events as application/json, not {media or 'a body without a Content-Type'}",
            errors=[FieldError(field="content-type", message=f"unsupported media type {media!r}")],
        )


# ---------------------------------------------------------------------------------------------------------------
# Applying events


def _event_args(event: InteractionEvent) -> tuple[object, ...]:
    """Parameters $1-$20 of the upsert: the event's indexed columns, then the whole event."""
    return (
        event.source,
        event.external_id,
        event.channel,
        event.direction,
        event.status,
        event.revision,
        event.occurred_at,
        event.answered_at,
        event.ended_at,
        event.agent,
        event.queue,
        event.thread_key,
        event.subject,
        event.reason,
        event.disposition,
        event.queue_wait_seconds,
        event.hold_seconds,
        event.talk_seconds,
        event.transfer_count,
        event,
    )


def _identity_args(
    event: InteractionEvent, options: IngestOptions
) -> tuple[list[str], list[str], list[str], str | None]:
    """The normalized identifiers as parallel arrays (kinds, values, verification levels), then the display name."""
    identifiers = normalize_identifiers(event.customer.identifiers, options.default_region, options.identity.rules)
    return (
        [i.kind for i in identifiers],
        [i.value for i in identifiers],
        [i.verification for i in identifiers],
        event.customer.display_name,
    )


async def _result(conn: asyncpg.Connection, event: InteractionEvent, row: asyncpg.Record | None) -> IngestResult:
    if row is None or row["id"] is None:
        interaction_id: UUID = await conn.fetchval(_Q["find_interaction_by_key"], event.source, event.external_id)
        return IngestResult(
            interaction_id=interaction_id, source=event.source, external_id=event.external_id, outcome="duplicate"
        )
    return IngestResult(
        interaction_id=row["id"],
        source=event.source,
        external_id=event.external_id,
        outcome="created" if row["created"] else "updated",
        customer_id=row["customer_id"],
    )


def _redacted(event: InteractionEvent, options: IngestOptions) -> tuple[InteractionEvent, dict[str, int]]:
    """Card numbers (and what the policy adds) masked before anything is stored."""
    if options.redact is None:
        return event, {}
    return options.redact(event)


async def apply_event(
    conn: asyncpg.Connection, event: InteractionEvent, *, raw_event_id: int | None, options: IngestOptions
) -> IngestResult:
    """Upsert one event by its key and link its identifiers (one round trip). Idempotent; must run inside a
    transaction."""
    stored, redactions = _redacted(event, options)
    row = await conn.fetchrow(
        _Q["upsert_interaction"],
        *_event_args(stored),
        raw_event_id,
        *_identity_args(stored, options),
        redactions,
        options.identity.linking,
    )
    return await _result(conn, event, row)


async def _ingest_single_event(
    conn: asyncpg.Connection, raw: RawDelivery, event: InteractionEvent, options: IngestOptions
) -> IngestBatchResult:
    """The common case, one event in a delivery: raw body and event in one atomic statement."""
    stored, redactions = _redacted(event, options)
    key_id, body = _sealed_body(raw, options)
    row = await conn.fetchrow(
        _Q["ingest_single_event"],
        *_event_args(stored),
        *_identity_args(stored, options),
        raw.route,
        raw.content_type,
        _stored_headers(raw),
        body,
        raw.body_size,
        key_id,
        redactions,
        options.identity.linking,
    )
    counts = _Counts()
    counts.add(await _result(conn, event, row))
    return counts.batch_result(row["raw_event_id"])


@dataclass(eq=False)
class _Waiting:
    """A one-event delivery waiting for its group to be stored, prepared as its statement needs it (redacted,
    identifiers normalized); `done` gets its result (None: store it alone)."""

    raw: RawDelivery
    event: InteractionEvent
    stored: InteractionEvent  # as stored: redacted
    redactions: dict[str, int]
    identity: tuple[list[str], list[str], list[str], str | None]  # kinds, values, levels, display name
    options: IngestOptions
    done: asyncio.Future[IngestBatchResult | None]
    stored_with: int = 0  # how many deliveries its group had (the request log's `ingest_group`)

    @property
    def lock_order(self) -> list[tuple[str, str]]:
        """Its normalized identifiers, in the order linking locks them: a group is stored in this order, so that
        two groups lock shared identifiers in the same order and do not deadlock."""
        kinds, values, _, _ = self.identity
        return list(zip(kinds, values, strict=True))


class GroupCommit:
    """Group commit for deliveries of one event (most webhooks and native posts).

    At most `writers` groups are being stored at a time. A delivery that finds a writer free is stored at once, alone
    (no added wait when the server is not busy); one that arrives while every writer is busy waits, and the next free
    writer stores everything waiting, up to `max_group`, in one statement (`ingest_single_event_batch`): one round
    trip, one transaction and one WAL flush for the group instead of one each. Each delivery still gets its own raw
    row and its own result, and its reply is sent only once the statement has committed.

    If the group's statement fails (a deadlock, one delivery breaking a constraint, the database gone), nothing of
    the group was kept and every delivery of it is stored alone, so that an error belongs to the delivery that caused
    it. The statement waits for a lock at most `lock_timeout` (0013: 200 ms): a group that meets a customer held by
    an erasure or a merge gives up and its deliveries are stored alone, so the one that needs that customer waits
    for it by itself, while the others, and the writer, go on."""

    def __init__(self, pool: asyncpg.Pool, *, max_group: int, writers: int) -> None:
        if max_group < 1 or writers < 1:
            raise ValueError("a group commit needs max_group >= 1 and writers >= 1")
        self._pool = pool
        self._max_group = max_group
        self._writers = writers
        self._waiting: list[_Waiting] = []
        self._busy = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def ingest(
        self, raw: RawDelivery, event: InteractionEvent, options: IngestOptions
    ) -> IngestBatchResult | None:
        """Store one delivery with whatever else is waiting. None: its group failed (or it could not be prepared for
        one); the caller stores it alone, which keeps the raw delivery with the error if it fails again."""
        try:
            stored, redactions = _redacted(event, options)
            identity = _identity_args(stored, options)
        except Exception:
            return None
        future: asyncio.Future[IngestBatchResult | None] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(raw, event, stored, redactions, identity, options, future)
        self._waiting.append(waiting)
        if self._busy < self._writers:
            self._start_writer()
        result = await waiting.done
        if result is not None:
            structlog.contextvars.bind_contextvars(ingest_group=waiting.stored_with)
        return result

    def _start_writer(self) -> None:
        self._busy += 1
        # A context of its own: the writer serves many requests, its log lines belong to none of them.
        task = asyncio.create_task(self._write(), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._writer_ended)

    def _writer_ended(self, task: asyncio.Task[None]) -> None:
        """A writer ends when nothing waits; deliveries may have come between its last look and now."""
        self._tasks.discard(task)
        self._busy -= 1
        if not self._waiting or self._busy >= self._writers:
            return
        if not task.cancelled():
            self._start_writer()
        elif self._busy == 0:  # cancelled: the server is stopping, and no writer is left to store them
            waiting, self._waiting = self._waiting, []
            for left in waiting:
                if not left.done.done():
                    left.done.set_result(None)

    async def _write(self) -> None:
        while self._waiting:
            policy = self._waiting[0].options.identity  # a group shares one identity policy (the server's)
            group = [w for w in self._waiting if w.options.identity is policy][: self._max_group]
            if len(group) == len(self._waiting):
                self._waiting.clear()
            else:
                taken = set(map(id, group))
                self._waiting = [w for w in self._waiting if id(w) not in taken]
            await self._store(group)

    async def _store(self, group: list[_Waiting]) -> None:
        group.sort(key=lambda w: w.lock_order)  # stable: deliveries naming the same identifiers keep their order
        try:
            async with self._pool.acquire() as conn:
                results = await _ingest_group(conn, group)
        except BaseException as exc:
            if isinstance(exc, asyncpg.LockNotAvailableError):
                log.info("ingest_group_waited_for_a_lock", deliveries=len(group))
            elif isinstance(exc, Exception):
                log.warning("ingest_group_failed", deliveries=len(group), error=f"{type(exc).__name__}: {exc}")
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_result(None)
            if not isinstance(exc, Exception):
                raise
            return
        for waiting, result in zip(group, results, strict=True):
            waiting.stored_with = len(group)
            if not waiting.done.done():  # its request may have been cancelled (a client that hung up)
                waiting.done.set_result(result)


async def _ingest_group(conn: asyncpg.Connection, group: list[_Waiting]) -> list[IngestBatchResult]:
    """Store one-event deliveries, all under the same identity policy, in one statement, in the given order."""
    columns: list[list[object]] = [[] for _ in range(20)]
    counts: list[int] = []
    kinds: list[str] = []
    values: list[str] = []
    levels: list[str] = []
    names: list[str | None] = []
    routes: list[str] = []
    content_types: list[str | None] = []
    headers: list[str] = []  # JSON text: asyncpg would take nested lists for a multidimensional array
    bodies: list[bytes] = []
    sizes: list[int] = []
    key_ids: list[str | None] = []
    redaction_counts: list[dict[str, int]] = []
    for waiting in group:
        for column, value in zip(columns, _event_args(waiting.stored), strict=True):
            column.append(value)
        its_kinds, its_values, its_levels, display_name = waiting.identity
        counts.append(len(its_kinds))
        kinds.extend(its_kinds)
        values.extend(its_values)
        levels.extend(its_levels)
        names.append(display_name)
        key_id, body = _sealed_body(waiting.raw, waiting.options)
        routes.append(waiting.raw.route)
        content_types.append(waiting.raw.content_type)
        headers.append(msgspec.json.encode(_stored_headers(waiting.raw)).decode())
        bodies.append(body)
        sizes.append(waiting.raw.body_size)
        key_ids.append(key_id)
        redaction_counts.append(waiting.redactions)
    rows = await conn.fetch(
        _Q["ingest_single_event_batch"],
        *columns,
        counts,
        kinds,
        values,
        levels,
        names,
        routes,
        content_types,
        headers,
        bodies,
        sizes,
        key_ids,
        redaction_counts,
        group[0].options.identity.linking,
    )
    results = []
    for waiting, row in zip(group, rows, strict=True):
        event = waiting.event
        outcome = "duplicate" if row["created"] is None else "created" if row["created"] else "updated"
        counts_of_one = _Counts()
        counts_of_one.add(
            IngestResult(
                interaction_id=row["id"],
                source=event.source,
                external_id=event.external_id,
                outcome=outcome,
                customer_id=row["customer_id"] if outcome != "duplicate" else None,
            )
        )
        results.append(counts_of_one.batch_result(row["raw_event_id"]))
    return results


ExtraApply = Callable[[asyncpg.Connection, int, "_Counts"], Awaitable[None]]


async def apply_events(
    conn: asyncpg.Connection,
    events: list[InteractionEvent],
    *,
    raw_event_id: int,
    options: IngestOptions,
    extra: ExtraApply | None = None,
) -> IngestBatchResult:
    """Apply a delivery's events, then `extra`, on behalf of raw event `raw_event_id` (inserted by the live path,
    an existing row for a replay). Must run inside the caller's transaction."""
    counts = _Counts()
    for event in events:
        counts.add(await apply_event(conn, event, raw_event_id=raw_event_id, options=options))
    if extra is not None:
        await extra(conn, raw_event_id, counts)
    return counts.batch_result(raw_event_id)


async def ingest_events(
    pool: asyncpg.Pool,
    raw: RawDelivery,
    events: list[InteractionEvent],
    *,
    options: IngestOptions,
    extra: ExtraApply | None = None,
    extra_keys: list[str] | None = None,
) -> IngestBatchResult:
    """Store the raw delivery and apply its events in one transaction (retried on deadlock). `extra` runs in the
    same transaction after the events (webhooks: replay tokens, message fragments).

    If applying fails, the raw delivery is still written with the error before it propagates: a UnifyError (e.g. a
    replayed token) is kept as rejected/unverified, anything else as failed."""
    single = len(events) == 1 and extra is None
    if single and options.group_commit is not None:
        grouped = await options.group_commit.ingest(raw, events[0], options)
        if grouped is not None:
            return grouped
        # None: its group could not be stored as one; it is stored alone, with the usual retries and errors.
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            if single:
                async with pool.acquire() as conn:
                    return await _ingest_single_event(conn, raw, events[0], options)
            async with pool.acquire() as conn, conn.transaction():
                keys = [event_key(e) for e in events] + (extra_keys or [])
                raw_event_id = await _insert_raw(conn, raw, "processed", None, options, keys)
                result = await apply_events(conn, events, raw_event_id=raw_event_id, options=options, extra=extra)
            return result
        except _RETRYABLE:
            if attempt == _ATTEMPTS:
                await _keep_failed(pool, raw, "gave up after repeated deadlocks", options)
                raise
            log.warning("ingest_retry", route=raw.route, attempt=attempt)
        except _UNREACHABLE:
            raise  # the database is unreachable: nothing can be kept, the client must retry (503)
        except UnifyError as exc:
            raise await reject(pool, raw, exc, options) from None
        except Exception as exc:
            await _keep_failed(pool, raw, f"{type(exc).__name__}: {exc}", options)
            raise
    raise AssertionError("unreachable")


async def _keep_failed(pool: asyncpg.Pool, raw: RawDelivery, message: str, options: IngestOptions) -> None:
    try:
        raw_event_id = await store_raw(pool, raw, "failed", message, options=options)
        log.error("ingest_failed", route=raw.route, raw_event_id=raw_event_id, error=message)
    except Exception:  # the original error matters more than this one
        log.exception("ingest_failed_and_raw_not_kept", route=raw.route)


async def ingest_native(
    pool: asyncpg.Pool, raw: RawDelivery, *, max_batch: int, options: IngestOptions
) -> tuple[IngestBatchResult, bool]:
    """The `POST /v1/interactions` path: validate, then store and apply. Returns the result and whether the body
    was a batch. Every rejection is kept raw and raised with its raw event id."""
    try:
        if raw.truncated:
            raise PayloadTooLarge(
                f"the body is larger than the limit of {len(raw.body)} bytes (UNIFY_MAX_BODY_BYTES)",
                errors=[FieldError(field="$", message=f"larger than {len(raw.body)} bytes")],
            )
        check_json_content_type(raw.content_type)
        events, is_batch = decode_native_events(raw.body, max_batch=max_batch)
    except UnifyError as exc:
        raise await reject(pool, raw, exc, options) from None
    result = await ingest_events(pool, raw, events, options=options)
    return result, is_batch
