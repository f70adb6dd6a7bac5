"""From settings to how deliveries are stored: the raw-body keyring and the redaction policy."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import structlog

from unify.ingest import IngestOptions
from unify.settings import Settings

log = structlog.get_logger("unify.privacy")
KEY_FILE = "raw-keys"

try:  # the two modules land separately; until both are in, the missing one is simply not used
    from unify.privacy.redact import RedactionPolicy, redact_event
except ImportError:  # pragma: no cover
    redact_event = None  # type: ignore[assignment]
try:
    from unify.privacy.vault import RawKeyring, load_or_create_keyring
except ImportError:  # pragma: no cover
    RawKeyring = None  # type: ignore[assignment,misc]


def raw_keyring(settings: Settings) -> RawKeyring | None:
    """UNIFY_RAW_KEYS if set; otherwise the key file in the data directory, created (and announced) on first use."""
    if RawKeyring is None:
        return None
    if settings.raw_keys:
        return RawKeyring.from_setting(settings.raw_keys)
    path = Path(settings.data_dir).expanduser() / KEY_FILE
    keyring, created = load_or_create_keyring(path)
    if created:
        log.warning(
            "raw_key_generated",
            path=str(path),
            hint="raw bodies are encrypted with this key; back it up, or set UNIFY_RAW_KEYS from a secret manager",
        )
    return keyring


def ingest_options(settings: Settings) -> IngestOptions:
    redact = None
    if redact_event is not None:
        policy = RedactionPolicy(iban=settings.redact_iban, national_ids=settings.redact_national_ids)
        redact = partial(redact_event, policy=policy)
    return IngestOptions(default_region=settings.default_region, sealer=raw_keyring(settings), redact=redact)
