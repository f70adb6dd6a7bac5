"""The Litestar app factory. The pool lives in the lifespan; migrations are applied at start."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from unify.auth import KeyChecker
from unify.context import context_policy
from unify.errors import ConfigurationError
from unify.http._guards import key_scope_middleware
from unify.http._middleware import request_log_middleware
from unify.http._openapi import document_problems
from unify.http._problems import EXCEPTION_HANDLERS
from unify.http.audit import AUDIT_HANDLERS
from unify.http.context import CONTEXT_HANDLERS
from unify.http.customers import CustomerController
from unify.http.health import healthz, readyz
from unify.http.identity import IDENTITY_HANDLERS
from unify.http.imports import import_file_handler
from unify.http.interactions import InteractionController
from unify.http.privacy import PRIVACY_HANDLERS
from unify.http.replay import replay_raw_events
from unify.http.stream import stream_interactions
from unify.http.webhooks import WebhookController
from unify.ingest import GroupCommit
from unify.logging import configure_logging
from unify.privacy.retention import periodic_purge
from unify.privacy.setup import ingest_options
from unify.settings import Settings, load_settings
from unify.store import migrate, open_pool
from unify.stream import InteractionFeed
from unify.webhooks import SettingsCache

log = structlog.get_logger("unify.http")


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service. Without `settings`, they are read from the environment (how server workers start)."""
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)
    dsn = settings.database_url
    if not dsn:
        raise ConfigurationError("DATABASE_URL is not set; `unify serve` starts an embedded PostgreSQL and sets it")

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        pool = await open_pool(dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            app.state.pool = pool
            app.state.key_checker = KeyChecker(pool, settings.key_cache_seconds)
            app.state.connector_settings = SettingsCache(pool, settings.key_cache_seconds, settings.default_region)
            options = ingest_options(settings)
            if settings.ingest_group_max > 0:
                group_commit = GroupCommit(
                    pool, max_group=settings.ingest_group_max, writers=settings.ingest_group_writers
                )
                options = replace(options, group_commit=group_commit)
            app.state.ingest_options = options
            app.state.context_policy = context_policy(settings)
            # Context reads write an access-log row each: their own pool commits them asynchronously, so a read
            # does not wait for a WAL flush (a database crash may lose the last fraction of a second of log rows;
            # never an interaction: ingest keeps the default synchronous commit). Their statements are planned
            # once per connection (a generic plan), not five times first at ~10 ms each.
            app.state.context_pool = await open_pool(
                dsn,
                min_size=1,
                max_size=settings.db_pool_max,
                server_settings={"synchronous_commit": "off", "plan_cache_mode": "force_generic_plan"},
            )
            # GET /v1/stream: listens lazily; a shutdown signal ends open streams, which would hold the server up.
            feed = InteractionFeed(dsn, max_queued=settings.stream_queue_size, end_streams_on_signal=True)
            async with periodic_purge(pool, settings), feed:
                app.state.stream_feed = feed
                # Everything built so far lives as long as the worker: the cyclic garbage collector's full passes
                # need not walk it again and again under load.
                gc.freeze()
                yield
        finally:
            context_pool = getattr(app.state, "context_pool", None)
            if context_pool is not None:
                await context_pool.close()
            await pool.close()
            log.info("database_pools_closed")

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            InteractionController,
            import_file_handler,
            CustomerController,
            *PRIVACY_HANDLERS,  # after CustomerController: same paths, other methods
            replay_raw_events,
            *IDENTITY_HANDLERS,
            *AUDIT_HANDLERS,
            *CONTEXT_HANDLERS,
            WebhookController,
            stream_interactions,
        ],
        lifespan=[lifespan],
        middleware=[request_log_middleware, key_scope_middleware],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=None,  # the ingest path enforces UNIFY_MAX_BODY_BYTES itself and keeps the prefix
        state=State({"settings": settings}),
        logging_config=None,  # structlog (unify.logging) writes every line; unhandled errors are logged by the handler
        openapi_config=OpenAPIConfig(
            title="unify",
            version="0.1.0",
            description=(
                "Omnichannel interaction unification: one history per customer across voice, SMS, email and chat."
            ),
            path="/schema",
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(type="http", scheme="bearer", description="An `uk_…` API key."),
                }
            ),
            security=[{"apiKey": []}],
        ),
    )
    document_problems(app)  # problem responses in the OpenAPI document (unify.http._openapi)
    return app
