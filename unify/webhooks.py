"""Webhook ingest: platform bytes → connector (verify, parse) → the same raw-first, idempotent apply as native events.

Order of work for one delivery:
1. unknown connector → NotFound (nothing kept: there is no platform to replay it for);
2. over the size limit → 413, the first bytes kept;
3. signature check → 401, the raw body kept and flagged `unverified`;
4. parse → 400 naming the field, the raw body kept as `rejected`;
5. one transaction: the raw body, every event, the replay token (a second use → 401), and message fragments
   (a split SMS becomes one event once all its parts are in). Then the platform gets the reply it expects."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec
import structlog

from connectors._base import (
    Connector,
    ConnectorSettings,
    Fragment,
    Parsed,
    PayloadError,
    Reply,
    SignatureError,
    WebhookRequest,
)
from connectors.registry import get_connector
from schemas import FieldError, IngestBatchResult, InteractionEvent
from unify.connector_settings import to_connector_settings
from unify.errors import BadRequest, NotFound, PayloadTooLarge, Unauthorized
from unify.ingest import (
    ExtraApply,
    IngestOptions,
    RawDelivery,
    _Counts,
    apply_event,
    event_key,
    ingest_events,
    reject,
    validate_event,
)
from unify.store import load_queries

log = structlog.get_logger("unify.webhooks")
_Q = load_queries("connectors")


@dataclass(frozen=True)
class LiveRequest:
    """The parts of an HTTP request a webhook needs, including headers that are never stored (authorization)."""

    method: str
    base_url: str  # scheme://host[:port] the request arrived at, used when no public_base_url is configured
    path: str
    query_string: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]


class SettingsCache:
    """Connector settings change rarely and are read on every delivery: keep them for a few seconds."""

    def __init__(self, pool: asyncpg.Pool, ttl: float, default_region: str) -> None:
        self._pool = pool
        self._ttl = ttl
        self._default_region = default_region
        self._known: dict[str, tuple[float, ConnectorSettings]] = {}

    async def get(self, connector: str) -> ConnectorSettings:
        now = time.monotonic()
        cached = self._known.get(connector)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._pool.acquire() as conn:
            stored = await conn.fetchval(_Q["get_connector_settings"], connector) or {}
        settings = to_connector_settings(stored, default_region=self._default_region)
        self._known[connector] = (now + self._ttl, settings)
        return settings


def public_url(live: LiveRequest, settings: ConnectorSettings) -> str:
    """The URL the platform called: the configured public base (the service may sit behind a proxy) + path + query."""
    base = settings.public_base_url or live.base_url
    return base.rstrip("/") + live.path + (f"?{live.query_string}" if live.query_string else "")


async def ingest_webhook(
    pool: asyncpg.Pool, cache: SettingsCache, name: str, live: LiveRequest, raw: RawDelivery, options: IngestOptions
) -> tuple[Reply, IngestBatchResult]:
    connector = get_connector(name)
    if connector is None:
        raise NotFound(f"no connector named {name!r}; see GET /v1/webhooks for the list")
    if raw.truncated:
        raise await reject(
            pool,
            raw,
            PayloadTooLarge(
                f"the body is larger than the limit of {len(raw.body)} bytes (UNIFY_MAX_BODY_BYTES)",
                errors=[FieldError(field="$", message=f"larger than {len(raw.body)} bytes")],
            ),
            options,
        )
    settings = await cache.get(name)
    options = options.in_region(settings.default_region)
    request = WebhookRequest(
        method=live.method,
        url=public_url(live, settings),
        headers=live.headers,
        body=raw.body,
        received_at=datetime.now(UTC),
        query=live.query,
    )
    parsed = await _verify_and_parse(pool, connector, request, settings, raw, options)
    result = await ingest_events(
        pool,
        raw,
        parsed.events,
        options=options,
        extra=webhook_extra(connector, parsed, options),
        extra_keys=[event_key(f.event) for f in parsed.fragments],
    )
    return connector.reply, result


def webhook_extra(
    connector: Connector, parsed: Parsed, options: IngestOptions, *, token_claimed: bool = False
) -> ExtraApply | None:
    """What a delivery applies besides its whole events, in the same transaction: its replay token (a second use →
    401) and the parts of split messages. None when there is nothing. `token_claimed`: the token was claimed when
    this very delivery committed before (a forced replay of a processed one), so it is not claimed again."""
    claim = parsed.replay_token if not token_claimed else None
    if claim is None and not parsed.fragments:
        return None
    name = connector.name

    async def extra(conn: asyncpg.Connection, raw_event_id: int, counts: _Counts) -> None:
        if claim is not None:
            claimed = await conn.fetchval(_Q["claim_replay_token"], name, claim)
            if claimed is None:
                raise Unauthorized(
                    "this signed delivery was already received once (replayed token)",
                    errors=[FieldError(field="token", message="replayed")],
                )
        for fragment in parsed.fragments:
            event = await _add_fragment(conn, connector, name, fragment, raw_event_id)
            if event is not None:
                counts.add(await apply_event(conn, event, raw_event_id=raw_event_id, options=options))

    return extra


async def _verify_and_parse(
    pool: asyncpg.Pool,
    connector: Connector,
    request: WebhookRequest,
    settings: ConnectorSettings,
    raw: RawDelivery,
    options: IngestOptions,
) -> Parsed:
    try:
        return verify_and_parse(connector, request, settings)
    except Unauthorized as exc:
        log.info("webhook_signature_failed", connector=connector.name, reason=exc.detail)
        raise await reject(pool, raw, exc, options) from None
    except BadRequest as exc:
        raise await reject(pool, raw, exc, options) from None


def verify_and_parse(
    connector: Connector, request: WebhookRequest, settings: ConnectorSettings, *, verify: bool = True
) -> Parsed:
    """Check the signature (unless `verify` is False or the connector is set not to), parse, and validate every
    event. Stores nothing: raises Unauthorized (signature) or BadRequest naming the field."""
    try:
        if verify and settings.verify:
            connector.verify(request, settings)
        parsed = connector.parse(request, settings)
        for event in [*parsed.events, *(f.event for f in parsed.fragments)]:
            validate_event(event)
        return parsed
    except SignatureError as exc:
        raise Unauthorized(exc.message, errors=[FieldError(field=exc.field, message=exc.message)]) from None
    except PayloadError as exc:
        raise BadRequest(
            f"this is not a valid {connector.name} delivery: {exc.message}",
            errors=[FieldError(field=exc.field, message=exc.message)],
        ) from None
    except (ValueError, msgspec.ValidationError) as exc:  # the platform's data breaks the schema's own rules
        raise BadRequest(
            f"this {connector.name} delivery does not make a valid interaction: {exc}",
            errors=[FieldError(field="$", message=str(exc))],
        ) from None
    except RecursionError:  # a decoder met data nested deeper than it decodes: malformed, not a server error
        raise BadRequest(
            f"this is not a valid {connector.name} delivery: it is nested too deeply",
            errors=[FieldError(field="$", message="nested too deeply")],
        ) from None


async def _add_fragment(
    conn: asyncpg.Connection, connector: Connector, name: str, fragment: Fragment, raw_event_id: int
) -> InteractionEvent | None:
    """Keep one part of a split message; when all parts are in, return the whole message's event."""
    await conn.execute(_Q["lock_fragment_group"], name, fragment.group)
    await conn.execute(_Q["reset_fragment_group"], name, fragment.group, fragment.index, fragment.event.external_id)
    await conn.execute(
        _Q["add_fragment"],
        name,
        fragment.group,
        fragment.index,
        fragment.total,
        fragment.text,
        fragment.event,
        raw_event_id,
    )
    rows = await conn.fetch(_Q["get_fragments"], name, fragment.group)
    if len(rows) < fragment.total:
        return None
    parts = [
        Fragment(
            group=fragment.group,
            index=r["part_index"],
            total=r["part_total"],
            text=r["text"],
            event=msgspec.convert(r["event"], InteractionEvent),
        )
        for r in rows
    ]
    return connector.assemble(parts)
