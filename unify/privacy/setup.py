"""From settings to how deliveries are stored: the raw-body keyring and the redaction policy."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from unify.identity import identity_policy
from unify.ingest import IngestOptions
from unify.privacy.redact import RedactionPolicy, redact_event
from unify.privacy.vault import RawKeyring, VaultError, load_or_create_keyring
from unify.settings import Settings

log = structlog.get_logger("unify.privacy")
KEY_FILE = "raw-keys"


def raw_keyring(settings: Settings) -> RawKeyring:
    """UNIFY_RAW_KEYS if set; otherwise the key file in the data directory, created (and announced) on first use."""
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
    policy = RedactionPolicy(iban=settings.redact_iban, national_ids=settings.redact_national_ids)
    return IngestOptions(
        default_region=settings.default_region,
        sealer=raw_keyring(settings),
        redact=partial(redact_event, policy=policy),
        identity=identity_policy(settings),
    )


def open_raw_body(keyring: RawKeyring | None, row: Mapping[str, Any]) -> bytes:
    """The body of a stored `raw_event` row as it was received (decrypted when it was sealed)."""
    body = bytes(row["body"])
    if row["key_id"] is None:
        return body
    if keyring is None:
        raise VaultError(f"raw event {row['id']} is encrypted under key {row['key_id']!r} and no key is configured")
    return keyring.decrypt(row["key_id"], body, associated_data=row["route"].encode())
