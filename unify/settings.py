"""Settings: read once from environment variables into one frozen Struct.

| Variable | Default | Meaning |
|---|---|---|
| `DATABASE_URL` (or `UNIFY_DATABASE_URL`) | unset | PostgreSQL to use. Unset: the embedded one in `UNIFY_DATA_DIR`. |
| `UNIFY_DATA_DIR` | user data dir (`~/.local/share/unify`) | Where the embedded PostgreSQL keeps its data. |
| `UNIFY_HOST` | `127.0.0.1` | Address `unify serve` listens on. |
| `UNIFY_PORT` | `8000` | Port `unify serve` listens on. |
| `UNIFY_WORKERS` | `1` | Server worker processes. |
| `UNIFY_MAX_BODY_BYTES` | `1048576` | Largest request body accepted; larger → 413 (the first bytes are kept). |
| `UNIFY_MAX_IMPORT_BYTES` | `33554432` | Largest `POST /v1/import` body (32 MiB); larger: `unify import FILE`. |
| `UNIFY_MAX_BATCH` | `1000` | Most events in one `POST /v1/interactions` batch. |
| `UNIFY_DEFAULT_REGION` | `US` | Region for phone numbers written without a country code (ISO 3166 alpha-2). |
| `UNIFY_LOG_FORMAT` | `auto` | `json`, `console`, or `auto` (console on a terminal, JSON lines otherwise). |
| `UNIFY_LOG_LEVEL` | `info` | `debug`, `info`, `warning`, `error`. |
| `UNIFY_DB_POOL_MIN` / `UNIFY_DB_POOL_MAX` | `2` / `10` | asyncpg pool size per worker. |
| `UNIFY_INGEST_GROUP_MAX` | `32` | Most one-event deliveries stored in one statement under load (`0`: each alone). |
| `UNIFY_INGEST_GROUP_WRITERS` | `2` | Such statements at once per worker; deliveries arriving meanwhile wait for one. |
| `UNIFY_KEY_CACHE_SECONDS` | `5` | How long a verified API key is trusted before it is checked again. |
| `UNIFY_RAW_KEYS` | file `UNIFY_DATA_DIR/raw-keys` | `kid:base64url-key[,older…]`; the first encrypts raw bodies. |
| `UNIFY_RAW_RETENTION_DAYS` | `30` | Processed raw bodies are purged after this many days. |
| `UNIFY_FAILED_RAW_RETENTION_DAYS` | `90` | Rejected, unverified and failed raw bodies are purged after this. |
| `UNIFY_RETENTION_<CHANNEL>_DAYS` | `0` (keep) | VOICE, SMS, EMAIL, CHAT interactions older than this are purged. |
| `UNIFY_PURGE_INTERVAL_SECONDS` | `3600` | How often `unify serve` purges (0: never; `unify purge` by hand). |
| `UNIFY_REDACT_IBAN` / `UNIFY_REDACT_NATIONAL_IDS` | `false` | Also mask IBANs / national ids (cards always are). |
| `UNIFY_MERGE_MIN_VERIFICATION` | `authenticated` | Weakest evidence that merges customers; weaker: a suggestion. |
| `UNIFY_IDENTIFIER_LIMITS` | `account=1,phone=5,email=5` | Most of a kind per customer; merges past it are vetoed. |
| `UNIFY_SHARED_IDENTIFIER_THRESHOLD` | `3` | Distinct customers seen on one identifier before it is marked shared. |
| `UNIFY_NORMALIZE_RULES` | empty | Equivalences, comma-separated: `gmail-dots`, `plus-tags`, `br-mobile-ninth-digit`. |
| `UNIFY_BLOCKED_IDENTIFIERS` | empty | Comma-separated `kind:value` that never link, e.g. `phone:+18005550100`. |
| `UNIFY_BLOCKED_PATTERNS` | empty | Regular expressions (space-separated) searched in `kind:value`: never link. |
| `UNIFY_FUZZY_MIN_SCORE` | `0.85` | Lowest name-similarity score (0–1) that makes a fuzzy merge suggestion. |
| `UNIFY_REPEAT_WINDOW_DAYS` | `7` | A contact within this many days of the customer's previous one is a repeat. |
| `UNIFY_CONTEXT_UNVERIFIED_VIEW` | `metadata` | What a lookup on unverified evidence shows: `metadata` or `full`. |
| `UNIFY_SUPPRESS_OFFERS_FAILED_CONTACTS` | `3` | Failed inbound interactions in 24 h that set `suppress_offers`. |
| `UNIFY_COMPLAINT_REASONS` | `complaint` | Reasons/dispositions (comma-separated) that count as a complaint. |
| `UNIFY_VIP_TIERS` | `gold,platinum,vip` | Values of the `tier` event attribute that set the `vip` flag. |
| `UNIFY_AT_RISK_REPEATS` | `3` | Repeat contacts within the window that set the `at_risk` flag. |
| `UNIFY_AT_RISK_WAIT_MINUTES` | `30` | Minutes of waiting on the current journey that set the `at_risk` flag. |
| `UNIFY_STREAM_HEARTBEAT_SECONDS` | `15` | How often `GET /v1/stream` sends a heartbeat comment on an idle stream. |
| `UNIFY_STREAM_QUEUE_SIZE` | `256` | Notices queued per stream client; past it the oldest go and `resync` is sent. |
| `UNIFY_AUDIT_MIN_COUNT` | `30` | Fewest values on each side (a channel, the other channels) before the audit judges. |
| `UNIFY_AUDIT_RATE_DIFFERENCE` | `0.10` | Smallest difference of a rate (absolute, 0–1) reported as a deviation. |
| `UNIFY_AUDIT_WAIT_RATIO` | `1.5` | Smallest ratio of median waits (either way) reported as a deviation. |
| `UNIFY_AUDIT_SIGNIFICANCE` | `0.01` | Largest p-value (z-test for rates, Mood's median test for waits) flagged. |
| `UNIFY_AUDIT_CONNECTIONS` | `2` | Database connections a consistency report works on at once (if free in the pool). |
| `UNIFY_AUDIT_TIMEOUT_SECONDS` | `300` | How long `GET /v1/audit/consistency` may take before it is stopped (503). |
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec
import platformdirs

from schemas import Verification
from unify.errors import ConfigurationError

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything unify can be configured with. See the module docstring for the variables."""

    database_url: str | None = None
    data_dir: str = str(platformdirs.user_data_path("unify"))
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 1_048_576
    max_import_bytes: int = 33_554_432
    max_batch: int = 1000
    default_region: str = "US"
    log_format: LogFormat = "auto"
    log_level: LogLevel = "info"
    db_pool_min: int = 2
    db_pool_max: int = 10
    ingest_group_max: int = 32
    ingest_group_writers: int = 2
    key_cache_seconds: float = 5.0
    raw_keys: str | None = None
    raw_retention_days: int = 30
    failed_raw_retention_days: int = 90
    retention_voice_days: int = 0
    retention_sms_days: int = 0
    retention_email_days: int = 0
    retention_chat_days: int = 0
    purge_interval_seconds: float = 3600.0
    redact_iban: bool = False
    redact_national_ids: bool = False
    merge_min_verification: Verification = "authenticated"
    identifier_limits: str = "account=1,phone=5,email=5"
    shared_identifier_threshold: int = 3
    normalize_rules: str = ""
    blocked_identifiers: str = ""
    blocked_patterns: str = ""
    fuzzy_min_score: float = 0.85
    repeat_window_days: float = 7.0
    context_unverified_view: Literal["metadata", "full"] = "metadata"
    suppress_offers_failed_contacts: int = 3
    complaint_reasons: str = "complaint"
    vip_tiers: str = "gold,platinum,vip"
    at_risk_repeats: int = 3
    at_risk_wait_minutes: float = 30.0
    stream_heartbeat_seconds: float = 15.0
    stream_queue_size: int = 256
    audit_min_count: int = 30
    audit_rate_difference: float = 0.10
    audit_wait_ratio: float = 1.5
    audit_significance: float = 0.01
    audit_connections: int = 2
    audit_timeout_seconds: float = 300.0

    @property
    def embedded_pgdata(self) -> Path:
        return Path(self.data_dir).expanduser() / "pgdata"


_ENV_FIELDS = {
    "database_url": ("DATABASE_URL", "UNIFY_DATABASE_URL"),
    "data_dir": ("UNIFY_DATA_DIR",),
    "host": ("UNIFY_HOST",),
    "port": ("UNIFY_PORT",),
    "workers": ("UNIFY_WORKERS",),
    "max_body_bytes": ("UNIFY_MAX_BODY_BYTES",),
    "max_import_bytes": ("UNIFY_MAX_IMPORT_BYTES",),
    "max_batch": ("UNIFY_MAX_BATCH",),
    "default_region": ("UNIFY_DEFAULT_REGION",),
    "log_format": ("UNIFY_LOG_FORMAT",),
    "log_level": ("UNIFY_LOG_LEVEL",),
    "db_pool_min": ("UNIFY_DB_POOL_MIN",),
    "db_pool_max": ("UNIFY_DB_POOL_MAX",),
    "ingest_group_max": ("UNIFY_INGEST_GROUP_MAX",),
    "ingest_group_writers": ("UNIFY_INGEST_GROUP_WRITERS",),
    "key_cache_seconds": ("UNIFY_KEY_CACHE_SECONDS",),
    "raw_keys": ("UNIFY_RAW_KEYS",),
    "raw_retention_days": ("UNIFY_RAW_RETENTION_DAYS",),
    "failed_raw_retention_days": ("UNIFY_FAILED_RAW_RETENTION_DAYS",),
    "retention_voice_days": ("UNIFY_RETENTION_VOICE_DAYS",),
    "retention_sms_days": ("UNIFY_RETENTION_SMS_DAYS",),
    "retention_email_days": ("UNIFY_RETENTION_EMAIL_DAYS",),
    "retention_chat_days": ("UNIFY_RETENTION_CHAT_DAYS",),
    "purge_interval_seconds": ("UNIFY_PURGE_INTERVAL_SECONDS",),
    "redact_iban": ("UNIFY_REDACT_IBAN",),
    "redact_national_ids": ("UNIFY_REDACT_NATIONAL_IDS",),
    "merge_min_verification": ("UNIFY_MERGE_MIN_VERIFICATION",),
    "identifier_limits": ("UNIFY_IDENTIFIER_LIMITS",),
    "shared_identifier_threshold": ("UNIFY_SHARED_IDENTIFIER_THRESHOLD",),
    "normalize_rules": ("UNIFY_NORMALIZE_RULES",),
    "blocked_identifiers": ("UNIFY_BLOCKED_IDENTIFIERS",),
    "blocked_patterns": ("UNIFY_BLOCKED_PATTERNS",),
    "fuzzy_min_score": ("UNIFY_FUZZY_MIN_SCORE",),
    "repeat_window_days": ("UNIFY_REPEAT_WINDOW_DAYS",),
    "context_unverified_view": ("UNIFY_CONTEXT_UNVERIFIED_VIEW",),
    "suppress_offers_failed_contacts": ("UNIFY_SUPPRESS_OFFERS_FAILED_CONTACTS",),
    "complaint_reasons": ("UNIFY_COMPLAINT_REASONS",),
    "vip_tiers": ("UNIFY_VIP_TIERS",),
    "at_risk_repeats": ("UNIFY_AT_RISK_REPEATS",),
    "at_risk_wait_minutes": ("UNIFY_AT_RISK_WAIT_MINUTES",),
    "stream_heartbeat_seconds": ("UNIFY_STREAM_HEARTBEAT_SECONDS",),
    "stream_queue_size": ("UNIFY_STREAM_QUEUE_SIZE",),
    "audit_min_count": ("UNIFY_AUDIT_MIN_COUNT",),
    "audit_rate_difference": ("UNIFY_AUDIT_RATE_DIFFERENCE",),
    "audit_wait_ratio": ("UNIFY_AUDIT_WAIT_RATIO",),
    "audit_significance": ("UNIFY_AUDIT_SIGNIFICANCE",),
    "audit_connections": ("UNIFY_AUDIT_CONNECTIONS",),
    "audit_timeout_seconds": ("UNIFY_AUDIT_TIMEOUT_SECONDS",),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build the settings from `environ` (default: the process environment), then `overrides`."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, names in _ENV_FIELDS.items():
        for name in names:
            if environ.get(name):
                lowered = field in ("log_format", "log_level", "merge_min_verification", "context_unverified_view")
                raw[field] = environ[name].lower() if lowered else environ[name]
                break
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigurationError(f"invalid setting: {exc}") from exc
    if len(settings.default_region) != 2 or not settings.default_region.isalpha():
        raise ConfigurationError("UNIFY_DEFAULT_REGION must be a two-letter region code such as US or GB")
    if settings.shared_identifier_threshold < 2:
        raise ConfigurationError("UNIFY_SHARED_IDENTIFIER_THRESHOLD must be at least 2")
    if not 0 < settings.fuzzy_min_score <= 1:
        raise ConfigurationError("UNIFY_FUZZY_MIN_SCORE must be in (0, 1]")
    if settings.stream_heartbeat_seconds <= 0:
        raise ConfigurationError("UNIFY_STREAM_HEARTBEAT_SECONDS must be positive")
    if settings.ingest_group_max < 0:
        raise ConfigurationError("UNIFY_INGEST_GROUP_MAX must be 0 (each delivery alone) or more")
    if settings.ingest_group_writers < 1:
        raise ConfigurationError("UNIFY_INGEST_GROUP_WRITERS must be at least 1")
    if settings.stream_queue_size < 1:
        raise ConfigurationError("UNIFY_STREAM_QUEUE_SIZE must be at least 1")
    if not 0 < settings.repeat_window_days <= 366:
        raise ConfigurationError("UNIFY_REPEAT_WINDOW_DAYS must be more than 0 and at most 366")
    if settings.audit_min_count < 1:
        raise ConfigurationError("UNIFY_AUDIT_MIN_COUNT must be at least 1")
    if not 0 < settings.audit_rate_difference < 1:
        raise ConfigurationError("UNIFY_AUDIT_RATE_DIFFERENCE must be in (0, 1)")
    if settings.audit_wait_ratio <= 1:
        raise ConfigurationError("UNIFY_AUDIT_WAIT_RATIO must be more than 1")
    if not 0 < settings.audit_significance < 1:
        raise ConfigurationError("UNIFY_AUDIT_SIGNIFICANCE must be in (0, 1)")
    if settings.audit_connections < 1:
        raise ConfigurationError("UNIFY_AUDIT_CONNECTIONS must be at least 1")
    if not 0 < settings.audit_timeout_seconds < math.inf:
        raise ConfigurationError("UNIFY_AUDIT_TIMEOUT_SECONDS must be more than 0")
    if settings.max_body_bytes < 1024:
        raise ConfigurationError("UNIFY_MAX_BODY_BYTES must be at least 1024")
    if settings.max_import_bytes < 1024:
        raise ConfigurationError("UNIFY_MAX_IMPORT_BYTES must be at least 1024")
    return msgspec.structs.replace(settings, default_region=settings.default_region.upper())
