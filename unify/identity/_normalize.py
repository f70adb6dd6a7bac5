"""One normalization per identifier kind, used by ingest and lookups alike.

A value that cannot identify a person (anonymous or withheld caller, a no-reply address, a number too short to be
real) normalizes to None: it is kept on the interaction as given but never links anyone. So does a value on the
administrators' block list; optional equivalences (`NormalizationRules`) fold variants of one mailbox or number."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.utils import parseaddr

import idna
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
    r"^(([a-z0-9]+[-_.])*(no[-_.]?reply|do[-_.]?not[-_.]?reply)|postmaster|mailer[-_.]?daemon|bounces?)"
    r"([+\-_.].*)?$"
)
"""Mailboxes no person reads: no-reply in any spelling (`notifications-noreply`, `do_not_reply`), postmaster,
mailer-daemon (`mailerdaemon` too), bounces."""
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_BR_COUNTRY_CODE = 55
# Before 2016 Brazilian mobiles had 8 digits (first 6-9) after a two-digit area code; they all gained a leading 9.
_BR_OLD_MOBILE = re.compile(r"[1-9][1-9][6-9]\d{7}")


EQUIVALENCE_RULES = frozenset({"gmail-dots", "plus-tags", "br-mobile-ninth-digit"})
"""Equivalences beyond plain normalization, each off unless named in UNIFY_NORMALIZE_RULES."""


@dataclass(frozen=True)
class NormalizationRules:
    """Optional equivalences (names from EQUIVALENCE_RULES) and the block list: exact (kind, normalized value)
    pairs and patterns matched against `kind:value`. A blocked identifier never links anyone."""

    equivalences: frozenset[str] = frozenset()
    blocked: frozenset[tuple[str, str]] = frozenset()
    blocked_patterns: tuple[re.Pattern[str], ...] = ()


DEFAULT_RULES = NormalizationRules()


@dataclass(frozen=True, order=True)
class NormalizedIdentifier:
    kind: IdentifierKind
    value: str
    verification: Verification = "unverified"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""Control characters other than tab and line breaks (which the stripping of each kind handles)."""


@functools.lru_cache(maxsize=65_536)
def normalize_phone(raw: str, default_region: str, *, br_ninth_digit: bool = False) -> str | None:
    """E.164 without any extension, or None for a value that cannot reach a person; `br_ninth_digit` writes old
    8-digit Brazilian mobile numbers with their ninth digit. Cached: the same numbers come back all day."""
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
    national = phonenumbers.national_significant_number(number)
    if set(national) <= {"0"} or len(national) < 5:
        return None
    # A number possible only when dialled locally (a US 7-digit `555-0100`: no area code) names no one line: two
    # people in two cities would share it.
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    if br_ninth_digit and number.country_code == _BR_COUNTRY_CODE and _BR_OLD_MOBILE.fullmatch(national):
        return f"+{_BR_COUNTRY_CODE}{national[:2]}9{national[2:]}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str, *, gmail_dots: bool = False, plus_tags: bool = False) -> str | None:
    """`local@domain` lower-cased, without display name, the domain IDNA-encoded; `plus_tags` drops a `+tag`
    from the local part, `gmail_dots` drops its dots at gmail.com (and googlemail.com, which becomes gmail.com)."""
    given = re.sub(r"\([^()]*\)", " ", raw).strip()  # `jane@example.com (Jane Doe)`: an RFC 5322 comment
    written = given[given.rfind("<") + 1 : -1] if given.endswith(">") and "<" in given else given
    if any(c.isspace() for c in written):  # `ada@exam ple.com`: parseaddr would quietly join the halves
        return None
    _, address = parseaddr(given)
    if address.count("@") != 1:
        return None
    local, domain = address.rsplit("@", 1)
    local = local.strip().lower()
    domain = domain.strip().rstrip(".").lower()
    if not local or not domain or "." not in domain:
        return None
    if domain.isascii():
        if any(not 0 < len(label) <= 63 for label in domain.split(".")) or len(domain) > 253:
            return None  # `exa..com`, a label or a name too long for DNS
    else:
        # IDNA 2008 with the UTS 46 mapping, as browsers and mail servers do: `straße.de` stays `xn--strae-oqa.de`
        # (the stdlib's IDNA 2003 codec would make it the different domain `strasse.de`)
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError:
            return None
    if _JUNK_MAILBOXES.match(local):
        return None
    if plus_tags:
        local = local.split("+", 1)[0] or local
    if gmail_dots and domain in _GMAIL_DOMAINS:
        local = local.replace(".", "") or local
        domain = "gmail.com"
    if _JUNK_MAILBOXES.match(local):
        return None
    return f"{local}@{domain}"


def normalize_identifier(
    identifier: Identifier, default_region: str, rules: NormalizationRules = DEFAULT_RULES
) -> NormalizedIdentifier | None:
    """The normalized form of one identifier under `rules`, or None when it cannot identify anyone or is blocked (a
    value with a control character, NUL included, is no one's: nothing a person types or a platform sends)."""
    value: str | None
    if _CONTROL.search(identifier.value):
        return None
    match identifier.kind:
        case "phone":
            value = normalize_phone(
                identifier.value, default_region, br_ninth_digit="br-mobile-ninth-digit" in rules.equivalences
            )
        case "email":
            value = normalize_email(
                identifier.value,
                gmail_dots="gmail-dots" in rules.equivalences,
                plus_tags="plus-tags" in rules.equivalences,
            )
        case "chat":
            # `platform:handle`: the platform is a name (`Intercom:42` is `intercom:42`), the handle is the
            # platform's own and kept as written
            platform, colon, handle = identifier.value.strip().partition(":")
            value = f"{platform.strip().lower()}:{handle.strip()}" if colon else platform or None
            if value is not None and (value.startswith(":") or value.endswith(":")):
                value = None  # a platform without a handle, or a handle without a platform's name
            if value is not None and value.lower() in _JUNK_CALLERS:
                value = None
        case _:
            value = identifier.value.strip() or None
            if value is not None and value.lower() in _JUNK_CALLERS:
                value = None
    if value is None or _blocked(identifier.kind, value, rules):
        return None
    return NormalizedIdentifier(identifier.kind, value, identifier.verification)


def normalize_identifiers(
    identifiers: list[Identifier], default_region: str, rules: NormalizationRules = DEFAULT_RULES
) -> list[NormalizedIdentifier]:
    """Normalize, drop junk, and keep each (kind, value) once at its strongest verification; sorted so that
    concurrent transactions lock identifier rows in the same order."""
    best: dict[tuple[str, str], NormalizedIdentifier] = {}
    for identifier in identifiers:
        normalized = normalize_identifier(identifier, default_region, rules)
        if normalized is None:
            continue
        key = (normalized.kind, normalized.value)
        current = best.get(key)
        if current is None or _rank(normalized.verification) > _rank(current.verification):
            best[key] = normalized
    return sorted(best.values())


def _blocked(kind: str, value: str, rules: NormalizationRules) -> bool:
    if (kind, value) in rules.blocked:
        return True
    key = f"{kind}:{value}"
    return any(pattern.search(key) for pattern in rules.blocked_patterns)


def _rank(level: Verification) -> int:
    return VERIFICATION_ORDER.index(level)
