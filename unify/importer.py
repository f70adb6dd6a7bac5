"""Bulk import and backfill: a file of native events (JSONL) or of CRM contacts (CSV), loaded chunk by chunk.

Each chunk of lines is one transaction: its lines kept raw as one `raw_event` (sealed like every raw body), its rows
COPYed into a temporary table, then applied by the chunk functions of migrations 0009, 0016 and 0017: interactions
upserted set-based with the folding of streaming ingest, identities resolved as the linking rule
(`link_interaction_identifiers`) resolves them (set-based where its outcome is known in advance: identifiers already
known, first contacts), the interactions' owners derived once, and the chunk recorded as committed. An import is
named by the file's SHA-256, its format and the column mapping, so running it again skips the chunks already
committed: an interrupted import resumes, a finished one is a no-op.

A line that is not a valid event (validated exactly as `POST /v1/interactions` validates) or contact does not stop
the import: it is reported with its line number and kept raw with its error, like every rejected input.

While PostgreSQL applies one chunk, the next one is read, decoded and normalized in a worker thread."""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, get_args
from uuid import UUID

import asyncpg
import msgspec
import structlog

from schemas import (
    VERIFICATION_ORDER,
    FieldError,
    Identifier,
    IdentifierKind,
    ImportFormat,
    ImportLineError,
    ImportReport,
    Verification,
)
from unify.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from unify.identity import normalize_identifiers

# The raw-body and event helpers of streaming ingest, so that both paths store exactly the same thing.
from unify.ingest import (
    IngestOptions,
    RawDelivery,
    _event_args,
    _redacted,
    _sealed_body,
    _stored_headers,
    decode_native_events,
    event_key,
    reject,
    store_raw,
)
from unify.store import DATABASE_UNREACHABLE, load_queries

log = structlog.get_logger("unify.importer")
_Q = load_queries("importer")
_INSERT_RAW = load_queries("ingest")["insert_raw_event"]

ROUTE = "import"
DEFAULT_CHUNK_SIZE = 5000
MAX_CHUNK_SIZE = 100_000
REPORTED_ERRORS = 20
CONTACT_KINDS: tuple[IdentifierKind, ...] = get_args(IdentifierKind)
MEDIA_TYPES: dict[str, ImportFormat] = {
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "text/csv": "csv",
}
CONTENT_TYPES: dict[ImportFormat, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv"}
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 3
_HASH_BLOCK = 1 << 20

_EVENT_COLUMNS = (
    "ord",
    "key_rank",
    "source",
    "external_id",
    "channel",
    "direction",
    "status",
    "revision",
    "occurred_at",
    "answered_at",
    "ended_at",
    "agent",
    "queue",
    "thread_key",
    "subject",
    "reason",
    "disposition",
    "queue_wait_seconds",
    "hold_seconds",
    "talk_seconds",
    "transfer_count",
    "event",
    "redactions",
    "kinds",
    "vals",
    "levels",
    "display_name",
)
_CONTACT_COLUMNS = ("ord", "kinds", "vals", "levels", "display_name")
# What a chunk records of itself (import_chunk.counts), besides the time its steps took.
_COUNTS = (
    "created",
    "updated",
    "duplicates",
    "recorded",
    "first",
    "linked",
    "linked_new",
    "linked_bridge",
    "customers",
    "suggestions",
)
_encode = msgspec.json.Encoder().encode


# ---------------------------------------------------------------------------------------------------------------
# What to import


@dataclass(frozen=True)
class ContactMapping:
    """Which CSV column holds which identifier (`name`: the display name), and how far the file is trusted."""

    columns: tuple[tuple[str, str], ...]
    verification: Verification = "authenticated"

    @property
    def key(self) -> str:
        """How the mapping names an import (with the file's hash and format)."""
        return ",".join(f"{kind}={column}" for kind, column in self.columns) + f";{self.verification}"


def parse_mapping(text: str | None, verification: str = "authenticated") -> ContactMapping:
    """`account=AccountNo,email=Email,phone=Mobile,name=FullName` → a ContactMapping. A kind may be named more than
    once (`phone=Mobile,phone=Home`). Raises BadRequest naming the `map` (or `verification`) parameter."""
    if verification not in VERIFICATION_ORDER:
        raise BadRequest(
            f"verification must be one of {', '.join(VERIFICATION_ORDER)}, not {verification!r}",
            errors=[FieldError(field="verification", message=f"unknown level {verification!r}")],
        )
    allowed = (*CONTACT_KINDS, "name")
    columns: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        kind, sep, column = item.partition("=")
        kind, column = kind.strip().lower(), column.strip()
        if not sep or kind not in allowed or not column:
            raise BadRequest(
                f"the mapping item {item!r} is not KIND=COLUMN with KIND one of {', '.join(allowed)}",
                errors=[FieldError(field="map", message=f"invalid item {item!r}")],
            )
        if kind == "name" and any(k == "name" for k, _ in columns):
            raise BadRequest(
                "the mapping names more than one `name` column",
                errors=[FieldError(field="map", message="`name` given twice")],
            )
        columns.append((kind, column))
    if not any(kind != "name" for kind, _ in columns):
        raise BadRequest(
            "a CSV import needs a column mapping naming at least one identifier column, "
            "e.g. account=AccountNo,email=Email,phone=Mobile,name=FullName",
            errors=[FieldError(field="map", message="no identifier column mapped")],
        )
    return ContactMapping(tuple(columns), verification)  # type: ignore[arg-type]


def format_for(content_type: str | None) -> ImportFormat:
    """The import format of a request body by its media type; UnsupportedMediaType otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    found = MEDIA_TYPES.get(media)
    if found is None:
        raise UnsupportedMediaType(
            f"send an import as application/x-ndjson (or application/jsonl) or text/csv, "
            f"not {media or 'a body without a Content-Type'}",
            errors=[FieldError(field="content-type", message=f"unsupported media type {media!r}")],
        )
    return found


def format_of_path(path: Path) -> ImportFormat | None:
    """The format a file name suggests (.jsonl, .ndjson, .csv), or None."""
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes:
        return "csv"
    if ".jsonl" in suffixes or ".ndjson" in suffixes:
        return "jsonl"
    return None


@dataclass(frozen=True)
class ImportSource:
    """The bytes to import: a file on disk, or a request body in memory; its name appears in the report and as the
    actor of the links it makes (`import:<name>`)."""

    name: str
    size: int
    opener: Callable[[], IO[bytes]]
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_path(cls, path: Path) -> ImportSource:
        return cls(path.name, path.stat().st_size, lambda: path.open("rb"))

    @classmethod
    def from_bytes(
        cls,
        name: str,
        data: bytes,
        *,
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> ImportSource:
        return cls(name, len(data), lambda: io.BytesIO(data), content_type, tuple(headers or ()))


def file_sha256(source: ImportSource) -> str:
    digest = hashlib.sha256()
    with source.opener() as stream:
        while block := stream.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Reading chunks (in a worker thread)


@dataclass
class _Line:
    number: int  # 1-based, of the record's first line
    raw: bytes  # as in the file, line endings included
    count: int = 1  # lines it spans (a CSV record with a quoted line break spans several)


@dataclass
class _Rejected:
    line: int
    error: BadRequest
    raw: bytes


@dataclass
class _Chunk:
    """A chunk as read and prepared: its raw lines (kept as one raw event), the staged rows, the rejected lines."""

    number: int
    first_line: int
    line_count: int
    end_offset: int  # bytes of the file read once this chunk is done
    body: bytes = b""
    rows: list[tuple[object, ...]] = field(default_factory=list)
    keys: list[str] | None = None
    rejected: list[_Rejected] = field(default_factory=list)
    unidentified: int = 0
    skipped: bool = False
    sealed: tuple[str | None, bytes] = (None, b"")  # the body as stored: its key id, and the (encrypted) bytes
    prepare_ms: float = 0.0


def _jsonl_lines(stream: IO[bytes]) -> Iterator[_Line]:
    for number, raw in enumerate(stream, start=1):
        yield _Line(number, raw)


class _CsvRecords:
    """CSV records with the raw lines each was read from (a quoted field may span lines)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._consumed: list[bytes] = []
        self._undecodable = False
        self._line = 0
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._reader = csv.reader(self._text_lines(), strict=True)
        self.header: list[str] = []

    def _text_lines(self) -> Iterator[str]:
        for raw in self._stream:
            self._consumed.append(raw)
            self._line += 1
            try:
                text = self._decoder.decode(raw)
            except UnicodeDecodeError:
                self._decoder.reset()
                self._undecodable = True
                text = raw.decode("utf-8", errors="replace")
            yield text

    def __iter__(self) -> Iterator[tuple[_Line, list[str] | BadRequest]]:
        while True:
            first = self._line + 1
            try:
                fields: list[str] | BadRequest = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                fields = BadRequest(f"malformed CSV: {exc}")
            if self._undecodable:
                fields = BadRequest("the line is not valid UTF-8")
            raw = b"".join(self._consumed)
            count = len(self._consumed)
            self._consumed.clear()
            self._undecodable = False
            yield _Line(first, raw, count), fields


class _Preparer:
    """Reads the file chunk by chunk and turns each into staged rows; runs in a worker thread, one chunk at a time
    (chunks committed by an earlier run are only read past)."""

    def __init__(
        self,
        stream: IO[bytes],
        fmt: ImportFormat,
        chunk_size: int,
        committed: set[int],
        options: IngestOptions,
        mapping: ContactMapping | None,
    ) -> None:
        self.fmt = fmt
        self.chunk_size = chunk_size
        self.committed = committed
        self.options = options
        self.mapping = mapping
        self.offset = 0
        self._number = 0
        self._columns: list[tuple[str, int]] = []
        if fmt == "csv":
            self._csv = _CsvRecords(stream)
            self._records: Iterator[tuple[_Line, list[str] | BadRequest]] = iter(self._csv)
        else:
            self._lines = _jsonl_lines(stream)

    def read_header(self) -> _Line | None:
        """CSV: read the header row and resolve the mapping's columns (BadRequest naming a missing column)."""
        assert self.mapping is not None
        first = next(self._records, None)
        if first is None:
            raise BadRequest(
                "the CSV file is empty; it needs a header row", errors=[FieldError(field="$", message="empty")]
            )
        line, header = first
        if isinstance(header, BadRequest):
            raise BadRequest(f"the CSV header row is invalid: {header.detail}")
        names = [name.strip() for name in header]
        self._csv.header = names
        for kind, column in self.mapping.columns:
            if column not in names:
                raise BadRequest(
                    f"the CSV file has no column {column!r} (mapped to {kind}); its columns: {', '.join(names)}",
                    errors=[FieldError(field="map", message=f"no column {column!r}")],
                )
            self._columns.append((kind, names.index(column)))
        return line

    def next_chunk(self, pending: list[_Line] | None = None) -> _Chunk | None:
        """The next chunk (its rows prepared unless an earlier run committed it), or None at the end."""
        items: list[tuple[_Line, object]] = [(line, None) for line in pending or []]
        source: Iterator[tuple[_Line, object]]
        if self.fmt == "csv":
            source = iter(self._records)
        else:
            source = ((line, None) for line in self._lines)
        for item in source:
            items.append(item)
            if len(items) >= self.chunk_size:
                break
        if not items:
            return None
        number = self._number
        self._number += 1
        self.offset += sum(len(line.raw) for line, _ in items)
        chunk = _Chunk(
            number=number,
            first_line=items[0][0].number,
            line_count=sum(line.count for line, _ in items),
            end_offset=self.offset,
        )
        if number in self.committed:
            chunk.skipped = True
            return chunk
        started = time.perf_counter()
        chunk.body = b"".join(line.raw for line, _ in items)
        if self.fmt == "jsonl":
            self._prepare_events(chunk, [line for line, _ in items])
        else:
            self._prepare_contacts(chunk, items)  # type: ignore[arg-type]
        chunk.sealed = _sealed_body(RawDelivery(ROUTE, None, [], chunk.body, len(chunk.body)), self.options)
        chunk.prepare_ms = (time.perf_counter() - started) * 1000
        return chunk

    def _prepare_events(self, chunk: _Chunk, lines: list[_Line]) -> None:
        options = self.options
        ranks: dict[tuple[str, str], int] = {}
        keys: list[str] = []
        for line in lines:
            text = line.raw.strip()
            if not text:
                continue
            try:
                if text[:1] != b"{":
                    raise BadRequest(
                        "each line must hold one interaction event as a JSON object",
                        errors=[FieldError(field="$", message="not a JSON object")],
                    )
                [event], _ = decode_native_events(text, max_batch=1)
            except BadRequest as exc:
                chunk.rejected.append(_Rejected(line.number, exc, line.raw))
                continue
            stored, redactions = _redacted(event, options)
            identifiers = normalize_identifiers(
                stored.customer.identifiers, options.default_region, options.identity.rules
            )
            if not identifiers:
                chunk.unidentified += 1
            key = (stored.source, stored.external_id)
            rank = ranks[key] = ranks.get(key, 0) + 1
            keys.append(event_key(stored))
            chunk.rows.append(
                (
                    line.number,
                    rank,
                    *_event_args(stored)[:-1],
                    _encode(stored).decode(),
                    _encode(redactions).decode(),
                    [i.kind for i in identifiers],
                    [i.value for i in identifiers],
                    [i.verification for i in identifiers],
                    stored.customer.display_name,
                )
            )
        chunk.keys = keys

    def _prepare_contacts(self, chunk: _Chunk, items: list[tuple[_Line, list[str] | BadRequest]]) -> None:
        assert self.mapping is not None
        level = self.mapping.verification
        width = len(self._csv.header)
        for line, fields in items:
            if isinstance(fields, BadRequest):
                chunk.rejected.append(_Rejected(line.number, fields, line.raw))
                continue
            if not fields or all(not value.strip() for value in fields):
                continue
            try:
                identifiers, name = self._contact(fields, width, level)
            except BadRequest as exc:
                chunk.rejected.append(_Rejected(line.number, exc, line.raw))
                continue
            normalized = normalize_identifiers(identifiers, self.options.default_region, self.options.identity.rules)
            if not normalized:
                chunk.unidentified += 1
                continue
            chunk.rows.append(
                (
                    line.number,
                    [i.kind for i in normalized],
                    [i.value for i in normalized],
                    [i.verification for i in normalized],
                    name,
                )
            )

    def _contact(self, fields: list[str], width: int, level: Verification) -> tuple[list[Identifier], str | None]:
        if len(fields) != width:
            raise BadRequest(
                f"the row has {len(fields)} fields, the header {width}",
                errors=[FieldError(field="$", message="wrong number of fields")],
            )
        identifiers: list[Identifier] = []
        name: str | None = None
        header = self._csv.header
        for kind, index in self._columns:
            value = fields[index].strip()
            if not value:
                continue
            column = header[index]
            if "\x00" in value:
                raise BadRequest(
                    f"column {column!r} contains a NUL character",
                    errors=[FieldError(field=column, message="contains a NUL character")],
                )
            limit = 256 if kind == "name" else 320
            if len(value) > limit:
                raise BadRequest(
                    f"column {column!r} is longer than {limit} characters",
                    errors=[FieldError(field=column, message=f"longer than {limit} characters")],
                )
            if kind == "name":
                name = value
            else:
                identifiers.append(Identifier(kind=kind, value=value, verification=level))  # type: ignore[arg-type]
        return identifiers, name


# ---------------------------------------------------------------------------------------------------------------
# Applying chunks


@dataclass
class _Totals:
    imported: int = 0
    updated: int = 0
    duplicates: int = 0
    unidentified: int = 0
    invalid: int = 0
    suggestions: int = 0
    customers: int = 0
    errors: list[ImportLineError] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    id: UUID
    fmt: ImportFormat
    source: ImportSource
    content_type: str
    policy: dict[str, object]
    options: IngestOptions


def _raw(run: _Run, body: bytes) -> RawDelivery:
    return RawDelivery(ROUTE, run.content_type, list(run.source.headers), body, len(body))


def _rejected_rows(run: _Run, chunk: _Chunk) -> list[tuple[object, ...]]:
    rows = []
    for rejected in chunk.rejected:
        raw = _raw(run, rejected.raw)
        key_id, body = _sealed_body(raw, run.options)
        error = rejected.error
        payload = {
            "title": error.title,
            "detail": f"line {rejected.line}: {error.detail}",
            "errors": error.errors,
        }
        rows.append(
            (
                ROUTE,
                raw.content_type,
                _stored_headers(raw),
                body,
                raw.body_size,
                False,
                "rejected",
                payload,
                key_id,
                None,
            )
        )
    return rows


async def _apply_chunk(
    conn: asyncpg.Connection, run: _Run, chunk: _Chunk, staged: Callable[[], None]
) -> dict[str, float] | None:
    """One chunk in one transaction: claim it, keep it raw, stage its rows by COPY and apply them. None when a
    concurrent run of the same import committed it first. Returns the counts, with the time each step took."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute("set local unify.notify = 'off'")  # imports do not stream (migration 0011)
        claimed = await conn.fetchval(_Q["claim_chunk"], run.id, chunk.number, chunk.first_line, chunk.line_count)
        if claimed is None:
            return None
        raw = _raw(run, chunk.body)
        key_id, body = chunk.sealed
        raw_event_id = await conn.fetchval(
            _INSERT_RAW,
            ROUTE,
            raw.content_type,
            _stored_headers(raw),
            body,
            raw.body_size,
            False,
            "processed",
            None,
            key_id,
            chunk.keys,
        )
        if chunk.rejected:
            await conn.executemany(_INSERT_RAW, _rejected_rows(run, chunk))
        counts: dict[str, float] = dict.fromkeys(_COUNTS, 0)
        staged_at = time.perf_counter()
        if chunk.rows and run.fmt == "jsonl":
            await conn.execute(_Q["create_event_stage"])
            await conn.copy_records_to_table("import_stage", records=chunk.rows, columns=_EVENT_COLUMNS)
            staged_at = time.perf_counter()
            staged()
            counts.update(dict(await conn.fetchrow(_Q["apply_events"], raw_event_id, run.policy)))
        elif chunk.rows:
            await conn.execute(_Q["create_contact_stage"])
            await conn.copy_records_to_table("import_contact_stage", records=chunk.rows, columns=_CONTACT_COLUMNS)
            staged_at = time.perf_counter()
            staged()
            counts.update(dict(await conn.fetchrow(_Q["link_contacts"], run.policy)))
        if chunk.rows:
            counts["first"] = await conn.fetchval(_Q["first_contacts"])
            if run.fmt == "csv":  # a contact is new when its row was linked, as a first contact or by the rule
                counts["created"], counts["duplicates"] = counts["first"] + counts["linked"], counts["recorded"]
        applied = time.perf_counter()
        counts.update(
            invalid=len(chunk.rejected),
            unidentified=chunk.unidentified,
            prepare_ms=round(chunk.prepare_ms, 1),
            stage_ms=round((staged_at - started) * 1000, 1),
            apply_ms=round((applied - staged_at) * 1000, 1),
        )
        await conn.execute(_Q["finish_chunk"], run.id, chunk.number, raw_event_id, counts)
    counts["commit_ms"] = round((time.perf_counter() - applied) * 1000, 1)
    return counts


async def _apply_with_retry(
    pool: asyncpg.Pool, run: _Run, chunk: _Chunk, staged: Callable[[], None]
) -> dict[str, float] | None:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with pool.acquire() as conn:
                return await _apply_chunk(conn, run, chunk, staged)
        except _RETRYABLE:
            if attempt == _ATTEMPTS:
                await _keep_failed(pool, run, chunk, "gave up after repeated deadlocks")
                raise
            log.warning("import_retry", import_id=str(run.id), chunk=chunk.number, attempt=attempt)
        except DATABASE_UNREACHABLE:
            raise  # the database is unreachable: nothing can be kept; the next run resumes here
        except Exception as exc:
            await _keep_failed(pool, run, chunk, f"{type(exc).__name__}: {exc}")
            raise
    raise AssertionError("unreachable")


async def _keep_failed(pool: asyncpg.Pool, run: _Run, chunk: _Chunk, message: str) -> None:
    """The chunk could not be applied: keep its lines raw with the error (a later run retries the chunk)."""
    try:
        raw_event_id = await store_raw(pool, _raw(run, chunk.body), "failed", message, options=run.options)
        log.error("import_chunk_failed", import_id=str(run.id), chunk=chunk.number, raw_event_id=raw_event_id)
    except Exception:  # the original error matters more than this one
        log.exception("import_chunk_failed_and_raw_not_kept", import_id=str(run.id), chunk=chunk.number)


def _line_errors(chunk: _Chunk) -> list[ImportLineError]:
    return [
        ImportLineError(
            line=r.line,
            message=r.error.detail,
            field=r.error.errors[0].field if r.error.errors else None,
        )
        for r in chunk.rejected
    ]


Progress = Callable[[int, int], None]
"""Called with (bytes of the file read so far, its size) after each chunk."""


async def import_file(
    pool: asyncpg.Pool,
    source: ImportSource,
    *,
    fmt: ImportFormat,
    options: IngestOptions,
    mapping: ContactMapping | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import `source` (resuming an earlier run of the same import); returns what this run did. BadRequest for a
    CSV import without a usable mapping or header; a chunk that fails to apply is kept raw as failed and the error
    propagates (the next run retries it)."""
    started = time.perf_counter()
    if fmt == "csv" and mapping is None:
        raise BadRequest("a CSV import needs a column mapping", errors=[FieldError(field="map", message="missing")])
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise BadRequest(f"the chunk size must be between 1 and {MAX_CHUNK_SIZE}")
    sha256 = await asyncio.to_thread(file_sha256, source)
    mapping_key = mapping.key if fmt == "csv" and mapping is not None else ""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(_Q["start_import"], sha256, fmt, mapping_key, source.name, source.size, chunk_size)
        committed = {r["chunk_no"] for r in await conn.fetch(_Q["committed_chunks"], row["id"])}
        statistics = _Statistics(await conn.fetchval(_Q["table_rows"]))
    run = _Run(
        id=row["id"],
        fmt=fmt,
        source=source,
        content_type=source.content_type or CONTENT_TYPES[fmt],
        policy={**options.identity.linking, "actor": f"{ROUTE}:{source.name}"},
        options=options,
    )
    log.info(
        "import_started",
        import_id=str(run.id),
        file=source.name,
        format=fmt,
        resumed=bool(committed),
        chunks_committed=len(committed),
    )
    totals = _Totals()
    chunks = skipped = lines = lines_skipped = 0
    with source.opener() as stream:
        preparer = _Preparer(stream, fmt, row["chunk_size"], committed, options, mapping)
        header: list[_Line] | None = None
        if fmt == "csv":
            first = await asyncio.to_thread(preparer.read_header)
            header = [first] if first is not None else None
        reading = _Reading(preparer)
        reading.start(header)
        try:
            while (chunk := await reading.result()) is not None:
                chunks += 1
                lines += chunk.line_count
                # The next chunk is read once this one is staged, while PostgreSQL applies it: reading it during
                # the COPY would only slow the COPY down (one interpreter lock).
                counts = None if chunk.skipped else await _apply_with_retry(pool, run, chunk, reading.start)
                reading.start()
                if counts is None:
                    skipped += 1
                    lines_skipped += chunk.line_count
                else:
                    _add(totals, counts, chunk)
                    await statistics.refresh(pool, int(counts["created"]))
                if progress is not None:
                    progress(chunk.end_offset, source.size)
        finally:
            await reading.settle()
    async with pool.acquire() as conn:
        await conn.execute(_Q["finish_import"], run.id)
    report = ImportReport(
        import_id=run.id,
        file_name=source.name,
        format=fmt,
        sha256=sha256,
        resumed=bool(committed),
        chunks=chunks,
        chunks_skipped=skipped,
        lines=lines,
        lines_skipped=lines_skipped,
        imported=totals.imported,
        updated=totals.updated,
        duplicates=totals.duplicates,
        unidentified=totals.unidentified,
        invalid=totals.invalid,
        errors=totals.errors,
        suggestions=totals.suggestions,
        customers_created=totals.customers,
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "import_finished",
        import_id=str(run.id),
        chunks=chunks,
        chunks_skipped=skipped,
        imported=report.imported,
        invalid=report.invalid,
        elapsed_s=report.elapsed_seconds,
    )
    return report


class _Reading:
    """The chunk being read and prepared in a worker thread, started at most once per chunk."""

    def __init__(self, preparer: _Preparer) -> None:
        self._preparer = preparer
        self._pending: asyncio.Future[_Chunk | None] | None = None

    def start(self, header: list[_Line] | None = None) -> None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._preparer.next_chunk, header))

    async def result(self) -> _Chunk | None:
        assert self._pending is not None
        # Shielded: a cancelled import leaves the thread to finish (settle) rather than read a closed file.
        chunk = await asyncio.shield(self._pending)
        self._pending = None
        return chunk

    async def settle(self) -> None:
        """Let the thread finish the chunk it is on (it cannot be interrupted) before the file is closed."""
        if self._pending is not None:
            await asyncio.gather(self._pending, return_exceptions=True)


class _Statistics:
    """Refreshes the planner statistics of the identity tables each time the import has doubled them (measured by
    interactions): the rule's cached plans, made when they were small, scan where they should look up."""

    _FLOOR = 5000

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.analyzed_at = rows

    async def refresh(self, pool: asyncpg.Pool, created: int) -> None:
        self.rows += created
        if self.rows - self.analyzed_at < max(self._FLOOR, self.analyzed_at):
            return
        async with pool.acquire() as conn:
            await conn.execute(_Q["analyze_identity"])
        self.analyzed_at = self.rows


def _add(totals: _Totals, counts: dict[str, float], chunk: _Chunk) -> None:
    totals.imported += int(counts["created"])
    totals.updated += int(counts["updated"])
    totals.duplicates += int(counts["duplicates"])
    totals.unidentified += int(counts["unidentified"])
    totals.invalid += int(counts["invalid"])
    totals.suggestions += int(counts["suggestions"])
    totals.customers += int(counts["customers"])
    room = REPORTED_ERRORS - len(totals.errors)
    if room > 0 and chunk.rejected:
        totals.errors.extend(_line_errors(chunk)[:room])


async def import_delivery(
    pool: asyncpg.Pool,
    raw: RawDelivery,
    *,
    name: str | None,
    mapping: str | None,
    verification: str | None,
    options: IngestOptions,
) -> ImportReport:
    """The `POST /v1/import` path: check the body as a whole (size, media type, mapping, CSV header), then import it.
    A body refused as a whole is kept raw with its error, which is raised with the raw event id."""
    try:
        if raw.truncated:
            raise PayloadTooLarge(
                f"the body is larger than the limit of {len(raw.body)} bytes (UNIFY_MAX_IMPORT_BYTES); "
                "import larger files with `unify import FILE`",
                errors=[FieldError(field="$", message=f"larger than {len(raw.body)} bytes")],
            )
        fmt = format_for(raw.content_type)
        if name is not None and not 0 < len(name) <= 200:
            raise BadRequest(
                "the import name must be 1 to 200 characters", errors=[FieldError(field="name", message="length")]
            )
        contacts = parse_mapping(mapping, verification or "authenticated") if fmt == "csv" else None
        if not raw.body.strip():
            raise BadRequest(
                "the body is empty; send JSONL events or a CSV file",
                errors=[FieldError(field="$", message="empty body")],
            )
        source = ImportSource.from_bytes(name or "upload", raw.body, content_type=raw.content_type, headers=raw.headers)
        return await import_file(pool, source, fmt=fmt, options=options, mapping=contacts)
    except BadRequest as exc:
        raise await reject(pool, raw, exc, options) from None
