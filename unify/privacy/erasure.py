"""Erasure and export: everything unify holds about one customer, deleted or handed over.

Erasure runs in one transaction, in an order that is safe while events keep arriving:

1. lock the customer's identifiers (`for update`, in the (kind, value) order ingest locks them), so an event
   carrying one of them waits until the erasure commits, then finds it gone and starts a new customer;
2. lock the customer row (linking another identifier to the customer needs it, so the set cannot grow any more);
3. lock the identifiers again: the final set, including one linked between 1 and 2;
4. one statement deletes the customer's interactions, their identifier links and raw deliveries, pending
   split-message parts naming an identifier, the identifiers and the customer, and writes the audit row
   (`erasure_log`: who, why and how many, no personal data). See `erase_customer` in queries/privacy.sql.

An event that updates one of the customer's interactions at that moment may deadlock with step 1 (ingest locks the
interaction first, then the identifiers); PostgreSQL aborts one side and both sides retry.

Raw deliveries that never became an interaction (rejected, unverified or failed ones: nothing names their events)
are opened (decrypted with the raw-body keys) and deleted when their body mentions one of the customer's identifiers
in any usual spelling: as stored, a phone number's digits with or without the country code, URL-encoded (form
bodies). Deliveries that carried one of the customer's interactions (earlier revisions and duplicates too) are found
by the event keys they recorded. Not found: interactions that mention the customer without being linked to them (an
agent's note quoting their number)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote_plus
from uuid import UUID

import asyncpg
import msgspec
import phonenumbers
import structlog

from schemas import CustomerExport, ErasureCounts, ErasureReceipt, FieldError
from unify.errors import BadRequest, NotFound
from unify.privacy.setup import open_raw_body
from unify.privacy.vault import RawKeyring, VaultError
from unify.store import load_queries

log = structlog.get_logger("unify.privacy")
_Q = load_queries("privacy")
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
_ATTEMPTS = 3
_REASON_LENGTH = (3, 500)


async def erase_customer(
    db: asyncpg.Pool | asyncpg.Connection,
    customer_id: UUID,
    *,
    actor: UUID,
    reason: str,
    keyring: RawKeyring | None = None,
) -> ErasureReceipt:
    """Delete everything held about one customer and log that it happened. Raises NotFound for an unknown customer,
    BadRequest for a reason that is blank or names the customer (the reason outlives the erasure)."""
    reason = reason.strip()
    if not _REASON_LENGTH[0] <= len(reason) <= _REASON_LENGTH[1]:
        raise BadRequest(
            "give the reason for the erasure in 3 to 500 characters",
            errors=[FieldError(field="$.reason", message="3 to 500 characters, not counting surrounding spaces")],
        )
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            if isinstance(db, asyncpg.Pool):
                async with db.acquire() as conn:
                    receipt = await _erase(conn, customer_id, actor, reason, keyring)
            else:
                receipt = await _erase(db, customer_id, actor, reason, keyring)
        except _RETRYABLE:
            if attempt == _ATTEMPTS:
                raise
            log.warning("erasure_retry", attempt=attempt)
            continue
        # The customer's id stays out of the log line too: the erasure id is what to quote.
        log.info("customer_erased", erasure_id=str(receipt.id), **msgspec.structs.asdict(receipt.counts))
        return receipt
    raise AssertionError("unreachable")


async def _erase(
    conn: asyncpg.Connection, customer_id: UUID, actor: UUID, reason: str, keyring: RawKeyring | None
) -> ErasureReceipt:
    async with conn.transaction():
        await conn.fetch(_Q["lock_customer_identifiers"], customer_id)
        customers = await conn.fetch(_Q["lock_customer"], customer_id)
        if not customers:
            raise NotFound(f"no customer with id {customer_id}")
        identifiers = await conn.fetch(_Q["lock_customer_identifiers"], customer_id)
        _refuse_personal_reason(reason, customers, identifiers)
        unprocessed = await _unprocessed_mentioning(conn, identifiers, keyring)
        row = await conn.fetchrow(
            _Q["erase_customer"],
            [c["id"] for c in customers],
            [r["id"] for r in identifiers],
            [r["value"] for r in identifiers],
            actor,
            reason,
            unprocessed,
        )
    return ErasureReceipt(
        id=row["id"], erased_at=row["erased_at"], counts=msgspec.convert(row["counts"], ErasureCounts)
    )


def _spellings(identifiers: Iterable[asyncpg.Record]) -> list[bytes]:
    """How a raw body may spell the customer's identifiers, case-folded: as stored, URL-encoded (form bodies), and
    for a phone number its digits with and without the country code."""
    found: set[str] = set()
    for identifier in identifiers:
        value = identifier["value"].casefold()
        found.update((value, quote_plus(value).casefold()))
        if identifier["kind"] == "phone":
            found.update(_phone_forms(identifier["value"]))
    return sorted(form.encode() for form in found if len(form) >= 6)


async def _unprocessed_mentioning(
    conn: asyncpg.Connection, identifiers: list[asyncpg.Record], keyring: RawKeyring | None
) -> list[int]:
    """The raw deliveries that never became an interaction (no event keys) whose body mentions the customer."""
    needles = _spellings(identifiers)
    if not needles:
        return []
    mentioning = []
    async for row in conn.cursor(_Q["unprocessed_raw_events"]):
        try:
            body = open_raw_body(keyring, row).lower()
        except VaultError:
            log.warning("erasure_raw_unreadable", raw_event_id=row["id"], key_id=row["key_id"])
            continue
        digits = re.sub(rb"[\s().\-/]", b"", body)
        if any(needle in body or needle in digits for needle in needles):
            mentioning.append(row["id"])
    return mentioning


def _mentions(text: str, value: str) -> bool:
    """Whether `text` (case-folded) contains `value`: anywhere when it is 6 characters or more, otherwise only as a
    whole word (a short account number should not match the digits of a ticket number)."""
    value = value.casefold()
    if len(value) >= 6:
        return value in text
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text) is not None


def _phone_forms(value: str) -> list[str]:
    """A stored E.164 number as it could be written, punctuation removed: with and without country code."""
    forms = [value.lstrip("+")]
    try:
        forms.append(phonenumbers.national_significant_number(phonenumbers.parse(value)))
    except phonenumbers.NumberParseException:
        pass
    return [form for form in forms if len(form) >= 6]


def _refuse_personal_reason(reason: str, customers: list[asyncpg.Record], identifiers: list[asyncpg.Record]) -> None:
    text = reason.casefold()
    digits = re.sub(r"[\s().\-/]", "", text)  # "+1 (415) 555-0100" → "+14155550100"
    named = None
    names = [c["display_name"].strip() for c in customers if c["display_name"] and c["display_name"].strip()]
    if any(str(c["id"]) in text or c["id"].hex in text for c in customers):
        named = "the customer's id"
    elif any(_mentions(text, name) for name in names):
        named = "the customer's name"
    else:
        for identifier in identifiers:
            value = identifier["value"]
            if _mentions(text, value) or (
                identifier["kind"] == "phone" and any(form in digits for form in _phone_forms(value))
            ):
                named = f"one of the customer's identifiers (a {identifier['kind']})"
                break
    if named is not None:
        raise BadRequest(
            f"the reason is kept after the erasure, so it must not name the customer; it contains {named}",
            errors=[FieldError(field="$.reason", message=f"contains {named}")],
        )


async def export_customer(conn: asyncpg.Connection, customer_id: UUID) -> CustomerExport | None:
    """Everything held about one customer (one query, one consistent snapshot); None for an unknown customer."""
    document = await conn.fetchval(_Q["export_customer"], customer_id)
    if document is None:
        return None
    return msgspec.convert(document, CustomerExport)
