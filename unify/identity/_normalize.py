"""One normalization per identifier kind, used by ingest and lookups alike.

A value that cannot identify a person (anonymous or withheld caller, a no-reply address, a number too short to be
real) normalizes to None: it is kept on the interaction as given but never links anyone."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.utils import parseaddr

import phonenumbers

from schemas import VERIFICATION_ORDER, Identifier, IdentifierKind, Verification

_PHONE_PREFIXES = ("tel:", "sip:", "sips:", "whatsapp:")
_JUNK_CALLERS = frozenset(
    {
        "anonymous",
        "withheld",
        "restricted",
        "private",
        "unknown",
        "unavailable",
        "blocked",
        "none",
        "null",
        # Twilio reports an anonymous caller as this number.
        "+266696687",
        "266696687",
    }
)
_JUNK_MAILBOXES = re.compile(
    r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|postmaster|mailer[-_.]daemon|bounces?)([+\-_.].*)?$"
)


@dataclass(frozen=True, order=True)
class NormalizedIdentifier:
    kind: IdentifierKind
    value: str
    verification: Verification = "unverified"


@functools.lru_cache(maxsize=65_536)
def normalize_phone(raw: str, default_region: str) -> str | None:
    """E.164, or None for a value that cannot reach a person. Cached: the same numbers come back all day."""
    value = raw.strip()
    lowered = value.lower()
    if lowered in _JUNK_CALLERS:
        return None
    for prefix in _PHONE_PREFIXES:
        if lowered.startswith(prefix):
            value = value[len(prefix) :]
            break
    value = value.split("@", 1)[0].split(";", 1)[0]  # sip:+1415…@host;user=phone
    if value.strip().lower() in _JUNK_CALLERS:
        return None
    digits = re.sub(r"\D", "", value)
    if not digits or set(digits) == {"0"} or len(digits) < 5:
        return None
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str | None:
    _, address = parseaddr(raw.strip())
    if address.count("@") != 1:
        return None
    local, domain = address.rsplit("@", 1)
    local = local.strip().lower()
    domain = domain.strip().rstrip(".").lower()
    if not local or not domain or "." not in domain:
        return None
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if _JUNK_MAILBOXES.match(local):
        return None
    return f"{local}@{domain}"


def normalize_identifier(identifier: Identifier, default_region: str) -> NormalizedIdentifier | None:
    """The normalized form of one identifier, or None when it cannot identify anyone."""
    value: str | None
    match identifier.kind:
        case "phone":
            value = normalize_phone(identifier.value, default_region)
        case "email":
            value = normalize_email(identifier.value)
        case _:
            value = identifier.value.strip() or None
            if value is not None and value.lower() in _JUNK_CALLERS:
                value = None
    if value is None:
        return None
    return NormalizedIdentifier(identifier.kind, value, identifier.verification)


def normalize_identifiers(identifiers: list[Identifier], default_region: str) -> list[NormalizedIdentifier]:
    """Normalize, drop junk, and keep each (kind, value) once at its strongest verification; sorted so that
    concurrent transactions lock identifier rows in the same order."""
    best: dict[tuple[str, str], NormalizedIdentifier] = {}
    for identifier in identifiers:
        normalized = normalize_identifier(identifier, default_region)
        if normalized is None:
            continue
        key = (normalized.kind, normalized.value)
        current = best.get(key)
        if current is None or _rank(normalized.verification) > _rank(current.verification):
            best[key] = normalized
    return sorted(best.values())


def _rank(level: Verification) -> int:
    return VERIFICATION_ORDER.index(level)
