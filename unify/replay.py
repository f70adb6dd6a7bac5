"""Replay: apply stored raw deliveries that failed again, with the current code and settings, after a fix.

Each selected `raw_event` row is replayed in one transaction of its own, holding the row's lock: its body is
decrypted, the request rebuilt (stored headers and content type, its route, `received_at` = when it arrived, so
timestamp freshness is judged at the time of receipt), parsed and validated by the current code with the current
connector settings, and its events are applied exactly like the live path (redaction, identity linking, fragments,
replay token). The row itself is updated — `processed` with its event keys, or the new error — and no second row is
ever written. Applying is idempotent: events already stored answer `duplicate`.

Signatures: `rejected` and `failed` deliveries passed their signature check when they arrived (it comes before
parsing), so they are not checked again. `unverified` ones are replayed only when asked (`reverify`), and then their
signature is checked again with the current settings; deliveries whose proof was never stored (HTTP basic auth,
Sunshine's X-API-Key, a GET's query string) are skipped, never ingested unverified.

What is never stored cannot be replayed: credentials (Authorization, X-API-Key) and the query string. A connector
that reads its query (`cdr-csv` `?tz=` / `?format=`) is replayed with its settings instead (`--timezone`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog

from connectors._base import ConnectorSettings, Parsed, WebhookRequest
from connectors.registry import get_connector
from schemas import InteractionEvent
from schemas._replay import RawStatus, ReplayedDelivery, ReplayReport, ReplayRequest
from unify.connector_settings import load_connector_settings
from unify.errors import Unauthorized, UnifyError
from unify.ingest import (
    ExtraApply,
    IngestOptions,
    apply_events,
    check_json_content_type,
    decode_native_events,
    error_payload,
    event_key,
)
from unify.privacy.setup import open_raw_body
from unify.privacy.vault import RawKeyring, VaultError
from unify.store import DATABASE_UNREACHABLE, load_queries
from unify.webhooks import LiveRequest, public_url, verify_and_parse, webhook_extra

log = structlog.get_logger("unify.replay")
_Q = load_queries("replay")

NATIVE_ROUTE = "native"
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_UNREACHABLE = DATABASE_UNREACHABLE
_ATTEMPTS = 3

# Connectors proven only by credentials that are never stored with a delivery (HTTP basic auth, a secret header).
_CREDENTIALS_ONLY = {
    "amazon-connect": "HTTP basic auth",
    "cdr-csv": "HTTP basic auth",
    "postmark": "HTTP basic auth",
    "sendgrid": "HTTP basic auth",
    "sunshine-conversations": "the X-API-Key header",
}
# Routes whose rows are not deliveries this module can replay, and what to do instead.
_OTHER_ROUTES = {
    "import": "an import chunk: run `unify import` with the file again (it resumes and re-applies what failed)",
    "demo": "demo data: run `unify demo` again",
}


def default_statuses(*, reverify: bool = False, force: bool = False) -> list[RawStatus]:
    statuses: list[RawStatus] = ["rejected", "failed"]
    if reverify:
        statuses.append("unverified")
    if force:
        statuses.append("processed")
    return statuses


@dataclass(frozen=True)
class ReplayContext:
    """What one run needs: the options deliveries are stored with, the key that opens raw bodies, and the limits."""

    options: IngestOptions
    keyring: RawKeyring | None
    default_region: str = "US"
    max_batch: int = 1000


class _SettingsOfRun:
    """Connector settings, read once per run: a replay uses them as they are when it starts."""

    def __init__(self, default_region: str) -> None:
        self._default_region = default_region
        self._known: dict[str, ConnectorSettings] = {}

    async def get(self, conn: asyncpg.Connection, name: str) -> ConnectorSettings:
        if name not in self._known:
            self._known[name] = await load_connector_settings(conn, name, default_region=self._default_region)
        return self._known[name]


@dataclass
class _Plan:
    events: list[InteractionEvent]
    options: IngestOptions
    extra: ExtraApply | None = None
    extra_keys: list[str] = field(default_factory=list)
    reverified: bool = False


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Rollback(Exception):
    """Raised at the end of a dry run's transaction so that nothing it did is kept."""

    def __init__(self, delivery: ReplayedDelivery) -> None:
        super().__init__("dry run")
        self.delivery = delivery


async def select_raw_events(conn: asyncpg.Connection, asked: ReplayRequest) -> list[asyncpg.Record]:
    statuses = asked.statuses or default_statuses(reverify=asked.reverify, force=asked.force)
    if "unverified" in statuses and not asked.reverify:
        statuses = [s for s in statuses if s != "unverified"]  # never without a fresh signature check
    return await conn.fetch(
        _Q["select_raw_events"],
        list(statuses),
        list(asked.ids) or None,
        list(asked.connectors) or None,
        asked.since,
        asked.until,
        asked.limit,
    )


async def replay(
    pool: asyncpg.Pool,
    asked: ReplayRequest,
    context: ReplayContext,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Replay every selected raw delivery, one transaction each, in id order; return what each did."""
    started = time.perf_counter()
    async with pool.acquire() as conn:
        candidates = await select_raw_events(conn, asked)
        deliveries: list[ReplayedDelivery] = []
        run_settings = _SettingsOfRun(context.default_region)
        if progress is not None:
            progress(0, len(candidates))
        for done, candidate in enumerate(candidates, start=1):
            delivery = await _replay_one(conn, candidate, context, asked, run_settings)
            deliveries.append(delivery)
            _log(delivery, dry_run=asked.dry_run)
            if progress is not None:
                progress(done, len(candidates))
    report = ReplayReport(
        dry_run=asked.dry_run,
        selected=len(deliveries),
        processed=sum(d.outcome == "processed" for d in deliveries),
        still_failing=sum(d.outcome not in ("processed", "skipped") for d in deliveries),
        skipped=sum(d.outcome == "skipped" for d in deliveries),
        created=sum(d.created for d in deliveries),
        updated=sum(d.updated for d in deliveries),
        duplicates=sum(d.duplicates for d in deliveries),
        deliveries=deliveries,
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )
    log.info(
        "replay.done",
        dry_run=report.dry_run,
        selected=report.selected,
        processed=report.processed,
        still_failing=report.still_failing,
        skipped=report.skipped,
        created=report.created,
        updated=report.updated,
        duplicates=report.duplicates,
    )
    return report


def _log(delivery: ReplayedDelivery, *, dry_run: bool) -> None:
    log.info(
        "replay.event",
        raw_event_id=delivery.raw_event_id,
        route=delivery.route,
        status_before=delivery.status_before,
        status_after=delivery.status_after,
        outcome=delivery.outcome,
        created=delivery.created,
        updated=delivery.updated,
        duplicates=delivery.duplicates,
        reverified=delivery.reverified,
        error_fields=[e.field for e in delivery.errors] or None,
        dry_run=dry_run,
    )


async def _replay_one(
    conn: asyncpg.Connection,
    candidate: asyncpg.Record,
    context: ReplayContext,
    asked: ReplayRequest,
    run_settings: _SettingsOfRun,
) -> ReplayedDelivery:
    base = {
        "raw_event_id": candidate["id"],
        "route": candidate["route"],
        "received_at": candidate["received_at"],
        "status_before": candidate["status"],
    }
    try:
        async with conn.transaction():
            row = await conn.fetchrow(_Q["lock_raw_event"], candidate["id"])
            if row is None:
                return _skipped(base, "deleted meanwhile (retention or erasure)")
            if row["status"] != candidate["status"]:
                return _skipped(base | {"status_before": row["status"]}, f"its status became {row['status']} meanwhile")
            delivery = await _replay_locked(conn, row, context, run_settings, base)
            if asked.dry_run:
                raise _Rollback(delivery)
            return delivery
    except _Rollback as done:
        return done.delivery


async def _replay_locked(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    context: ReplayContext,
    run_settings: _SettingsOfRun,
    base: dict[str, Any],
) -> ReplayedDelivery:
    status: RawStatus = row["status"]
    try:
        plan = await _plan(conn, row, context, run_settings)
    except _Skip as skip:
        return _skipped(base, skip.reason)
    except VaultError as exc:  # the body cannot be opened: nothing to replay, and nothing to write
        return ReplayedDelivery(**base, status_after=status, outcome="failed", error=str(exc))
    except UnifyError as exc:  # still invalid (or its signature still fails) with the current code and settings
        return await _still_failing(conn, row, base, exc)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with conn.transaction():  # a savepoint: a failure leaves the row's lock and transaction usable
                result = await apply_events(
                    conn, plan.events, raw_event_id=row["id"], options=plan.options, extra=plan.extra
                )
                keys = [event_key(e) for e in plan.events] + plan.extra_keys
                await conn.execute(_Q["mark_raw_event_processed"], row["id"], keys)
            return ReplayedDelivery(
                **base,
                status_after="processed",
                outcome="processed",
                created=result.created,
                updated=result.updated,
                duplicates=result.duplicates,
                reverified=plan.reverified,
            )
        except _RETRYABLE:
            if attempt == _ATTEMPTS:
                return await _still_failing(conn, row, base, "gave up after repeated deadlocks")
        except _UNREACHABLE:
            raise
        except UnifyError as exc:  # e.g. a replay token another delivery claimed
            return await _still_failing(conn, row, base, exc)
        except Exception as exc:
            return await _still_failing(conn, row, base, f"{type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")


async def _still_failing(
    conn: asyncpg.Connection, row: asyncpg.Record, base: dict[str, Any], error: UnifyError | str
) -> ReplayedDelivery:
    """Record the new error on the row (a processed row keeps its status: its events are stored already)."""
    if isinstance(error, Unauthorized):
        status: RawStatus = "unverified"
    elif isinstance(error, UnifyError):
        status = "rejected"
    else:
        status = "failed"
    detail = error.detail if isinstance(error, UnifyError) else error
    errors = error.errors if isinstance(error, UnifyError) else []
    if row["status"] == "processed":
        return ReplayedDelivery(**base, status_after="processed", outcome=status, error=detail, errors=errors)
    await conn.execute(_Q["mark_raw_event_failing"], row["id"], status, error_payload(error))
    return ReplayedDelivery(**base, status_after=status, outcome=status, error=detail, errors=errors)


def _skipped(base: dict[str, Any], reason: str) -> ReplayedDelivery:
    return ReplayedDelivery(**base, status_after=base["status_before"], outcome="skipped", error=reason)


async def _plan(
    conn: asyncpg.Connection, row: asyncpg.Record, context: ReplayContext, run_settings: _SettingsOfRun
) -> _Plan:
    """Open, rebuild, (re-verify,) parse and validate one raw delivery. Raises _Skip when it cannot be replayed,
    UnifyError when it is still invalid."""
    route: str = row["route"]
    if route in _OTHER_ROUTES:
        raise _Skip(_OTHER_ROUTES[route])
    if row["truncated"]:
        raise _Skip("the body was larger than the size limit and only its start was kept")
    if route == NATIVE_ROUTE:
        if row["status"] == "unverified":
            raise _Skip("a native delivery carries no platform signature to check again")
        body = open_raw_body(context.keyring, row)
        check_json_content_type(row["content_type"])
        events, _ = decode_native_events(body, max_batch=context.max_batch)
        return _Plan(events=events, options=context.options)
    connector = get_connector(route)
    if connector is None:
        raise _Skip(f"no connector named {route!r} any more")
    settings = await run_settings.get(conn, route)
    reverify = row["status"] == "unverified"
    if reverify:
        _check_reverifiable(route, settings, row)
    body = open_raw_body(context.keyring, row)
    if not body:
        raise _Skip("the body is empty: a GET delivery's parameters were in the query string, which is never stored")
    request = rebuild_request(row, body, settings)
    parsed: Parsed = verify_and_parse(connector, request, settings, verify=reverify)
    options = context.options.in_region(settings.default_region)
    return _Plan(
        events=parsed.events,
        options=options,
        extra=webhook_extra(connector, parsed, options, token_claimed=row["status"] == "processed"),
        extra_keys=[event_key(f.event) for f in parsed.fragments],
        reverified=reverify,
    )


def _check_reverifiable(route: str, settings: ConnectorSettings, row: asyncpg.Record) -> None:
    if not settings.verify:
        raise _Skip("signature checks are off for this connector (--no-verify): it cannot be re-verified")
    proof = _CREDENTIALS_ONLY.get(route)
    if route == "email-mime" and settings.basic_auth:
        proof = "HTTP basic auth"
    if route == "chatwoot" and not settings.secret:
        proof = "HTTP basic auth"
    if proof is not None:
        raise _Skip(f"cannot be re-verified: {route} is proven by {proof}, which is never stored")


def rebuild_request(row: asyncpg.Record, body: bytes, settings: ConnectorSettings) -> WebhookRequest:
    """The request as the connector saw it, from what was stored: headers (credentials excepted), body, route and the
    time it arrived. The URL is the configured public base URL (else the stored Host) + the route's path; the query
    string was never stored."""
    headers = {str(name).lower(): str(value) for name, value in _header_pairs(row["headers"])}
    scheme = headers.get("x-forwarded-proto", "http").split(",", 1)[0].strip() or "http"
    live = LiveRequest(
        method="POST",
        base_url=f"{scheme}://{headers.get('host', 'localhost')}",
        path=f"/v1/webhooks/{row['route']}",
        query_string="",
        query=[],
        headers=headers,
    )
    received_at: datetime = row["received_at"]
    return WebhookRequest(
        method=live.method,
        url=public_url(live, settings),
        headers=headers,
        body=body,
        received_at=received_at,
        query=(),
    )


def _header_pairs(stored: object) -> Sequence[Sequence[str]]:
    if isinstance(stored, str | bytes):
        stored = msgspec.json.decode(stored)
    return [pair for pair in stored or [] if isinstance(pair, list | tuple) and len(pair) == 2]  # type: ignore[union-attr]


def print_report(report: ReplayReport, console: Any) -> None:
    """The report as a table, then the totals (`unify replay` without --json). `console`: a rich Console."""
    from rich.table import Table

    title = "replay (dry run: nothing written)" if report.dry_run else "replay"
    table = Table(title=title, title_justify="left")
    for name, justify in (
        ("id", "right"),
        ("route", "left"),
        ("received", "left"),
        ("status", "left"),
        ("created", "right"),
        ("updated", "right"),
        ("duplicate", "right"),
        ("error", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for d in report.deliveries:
        change = f"{d.status_before} → {d.status_after}" + (" (skipped)" if d.outcome == "skipped" else "")
        table.add_row(
            str(d.raw_event_id),
            d.route,
            f"{d.received_at:%Y-%m-%d %H:%M:%S%z}",
            change,
            str(d.created),
            str(d.updated),
            str(d.duplicates),
            d.error or "",
        )
    if report.deliveries:
        console.print(table)
    console.print(
        f"{report.selected} selected: {report.processed} processed, {report.still_failing} still failing, "
        f"{report.skipped} skipped; interactions {report.created} created, {report.updated} updated, "
        f"{report.duplicates} duplicate(s)" + (" (dry run: nothing written)" if report.dry_run else "")
    )
