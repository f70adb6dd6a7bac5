"""The raw-body key the test suite runs with, and reading raw bodies back as they were received."""

from __future__ import annotations

from typing import Any

from unify.privacy.setup import open_raw_body
from unify.privacy.vault import generate_keyring

TEST_KEYRING = generate_keyring()


def open_raw(row: Any) -> bytes:
    """A `raw_event` row's body, decrypted with the test key (asserts it was stored encrypted)."""
    assert row["key_id"] == TEST_KEYRING.current_id, "raw bodies must be stored encrypted"
    return open_raw_body(TEST_KEYRING, row)
