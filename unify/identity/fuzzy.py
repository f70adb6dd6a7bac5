"""Fuzzy merge suggestions: customers whose names look alike, scored with the attributes their groups share.

Names come from every source of a customer's display name (email display names, chat profiles, imports). A scan
(`scan_fuzzy_suggestions`, or `unify identity scan`) works in three steps:

1. Candidates, in PostgreSQL: pairs of root customers whose names share enough trigrams (`CANDIDATE_SIMILARITY`,
   pg_trgm over `customer.name_key`, migration 0008), each root keeping only its `NEIGHBOURS` nearest names so
   that a common name does not make the scan quadratic. Skipped: names made only of placeholder words
   (`PLACEHOLDER_WORDS`: "Guest 4821", "Visitor"), and pairs already decided or under review, matched through the
   current roots: a fuzzy suggestion of any status but dismissed, an open or rejected evidence suggestion (an open
   one already asks a person about the pair, on stronger grounds), or a merge of the two that was undone.
2. Scoring, here, with rapidfuzz, on names as `name_key` leaves them (accents stripped, case folded, punctuation,
   digits and placeholder words dropped). Two names are as similar as the larger of `fuzz.ratio` (edits: "Bob Lee"
   / "Rob Lee") and `fuzz.token_sort_ratio` (word order: "Doe, Jane" / "JANE DOE"), divided by 100; a name of a
   single word counts for `SINGLE_WORD_FACTOR` of that, since a first name or a handle alone identifies nobody, and
   so does a common one (`COMMON_NAME_FACTOR`: a name `COMMON_NAME_HOLDERS` or more root customers have), so that
   the many customers called Maria Garcia are not all suggested to one another on their name alone.
   The name similarity `n` of two customers is the best over any name of one group and any of the other (customers
   merged into a root keep their names). Each attribute the two groups share adds its weight `w` (`WEIGHTS`; each
   kind counts once, the strongest):
     * the same email local part (plus tag removed) on different addresses (`email_local_part`, 0.5), unless it
       is a role mailbox such as info@ or support@ (`ROLE_MAILBOXES`);
     * the same national phone number under another country code (`phone_national_number`, 0.5), or else two
       numbers ending in the same 7 digits (`phone_last_digits`, 0.35);
     * the same conversation thread, `thread_key` (`thread`, 0.4).
   score = 1 − (1 − n) × Π (1 − w), in [0, 1]: identical names score 1, and each shared attribute removes a share
   of the doubt that remains (names 70% alike with the same local part: 1 − 0.3 × 0.5 = 0.85).
3. Pairs scoring at least `min_score` (UNIFY_FUZZY_MIN_SCORE) become `merge_suggestion` rows of kind 'fuzzy' with
   their score and plain-language reasons: 'pending', or 'conflict' with the veto when their union would break a
   per-kind identifier limit (`merge_conflict`). A scan never merges anyone: only a person accepting a suggestion
   does. Running it again adds only pairs it has not suggested yet."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from uuid import UUID

import asyncpg
import msgspec
import phonenumbers
import structlog
from rapidfuzz import fuzz

from unify.errors import BadRequest
from unify.store import load_queries

log = structlog.get_logger("unify.identity")

_Q = load_queries("fuzzy")

NEIGHBOURS = 20
"""The most candidates one root customer's name brings (its nearest names by trigram similarity)."""

CANDIDATE_SIMILARITY = 0.3
"""Trigram similarity two names need to be compared at all (pg_trgm's own default); the score decides."""

CHUNK = 500
"""Candidate pairs scored and written together."""

SINGLE_WORD_FACTOR = 0.8
"""Share of its similarity a name of one word keeps (alone it needs a shared attribute to be suggested)."""

COMMON_NAME_FACTOR = 0.8
COMMON_NAME_HOLDERS = 5
"""A name this many root customers have keeps `COMMON_NAME_FACTOR` of its similarity."""

WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"email_local_part": 0.5, "phone_national_number": 0.5, "phone_last_digits": 0.35, "thread": 0.4}
)

PLACEHOLDER_WORDS = frozenset(
    {
        "anonymous",
        "caller",
        "client",
        "contact",
        "customer",
        "guest",
        "messenger",
        "unknown",
        "user",
        "visitor",
        "whatsapp",
        "wireless",
    }
)
"""Words that chat widgets, carriers and CRMs put where a name is missing; a name made only of them is none."""

ROLE_MAILBOXES = frozenset(
    {
        "admin",
        "billing",
        "contact",
        "hello",
        "help",
        "info",
        "mail",
        "office",
        "sales",
        "service",
        "support",
        "team",
    }
)
"""Local parts used by many unrelated organisations; the same one on two domains says nothing."""

_NOT_LETTERS = re.compile(r"[^\w]|[\d_]")
_LAST_DIGITS = 7


class FuzzyScanReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one scan did: pairs scored, suggestions written (conflicts included), and how many were conflicts."""

    min_score: float
    candidates_compared: int = 0
    suggestions_created: int = 0
    conflicts: int = 0


@dataclass
class CustomerProfile:
    """What a customer's group offers for comparison: its display names, each with how many root customers have
    it (its compared form), its unshared email addresses and phone numbers as (identifier id, value), and the
    conversation threads it took part in."""

    names: dict[str, int] = field(default_factory=dict)
    emails: list[tuple[int, str]] = field(default_factory=list)
    phones: list[tuple[int, str]] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class FuzzyMatch:
    score: float
    reasons: list[str]
    identifier_ids: list[int]


def name_key(name: str) -> str | None:
    """A display name as compared: accents stripped, case folded, only words of letters, placeholder words
    dropped. None when nothing is left ("Guest 4821")."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = [w for w in _NOT_LETTERS.sub(" ", bare).split() if w not in PLACEHOLDER_WORDS]
    return " ".join(words) or None


def name_similarity(a: str, b: str, holders: int = 1) -> tuple[float, str | None]:
    """The similarity of two display names in [0, 1], and its reason; (0, None) when either is no name. `holders`:
    how many root customers have the more common of the two."""
    key_a, key_b = name_key(a), name_key(b)
    if key_a is None or key_b is None:
        return 0.0, None
    ratio = max(fuzz.ratio(key_a, key_b), fuzz.token_sort_ratio(key_a, key_b)) / 100
    similarity = ratio
    notes = []
    if " " not in key_a or " " not in key_b:
        similarity *= SINGLE_WORD_FACTOR
        notes.append("a single word counts for less")
    if holders >= COMMON_NAME_HOLDERS:
        similarity *= COMMON_NAME_FACTOR
        notes.append(f"a name {holders} customers have counts for less")
    reason = f"names '{a}' and '{b}' are {round(ratio * 100)}% similar"
    return similarity, reason + (f" ({'; '.join(notes)})" if notes else "")


def _local_part(address: str) -> str:
    return address.partition("@")[0].partition("+")[0]


def _shared_email(a: CustomerProfile, b: CustomerProfile) -> tuple[str, list[int]] | None:
    for id_a, value_a in a.emails:
        local = _local_part(value_a)
        if len(local) < 3 or local in ROLE_MAILBOXES:
            continue
        for id_b, value_b in b.emails:
            if value_b != value_a and _local_part(value_b) == local:
                domains = f"{value_a.partition('@')[2]} and {value_b.partition('@')[2]}"
                return f"same email local part {local} (at {domains})", [id_a, id_b]
    return None


def _phone(value: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(value)
    except phonenumbers.NumberParseException:
        return None


def _shared_phone(a: CustomerProfile, b: CustomerProfile) -> tuple[str, str, list[int]] | None:
    """The strongest phone attribute: the same national number under another country code, else the same last
    digits."""
    last_digits: tuple[str, str, list[int]] | None = None
    for id_a, value_a in a.phones:
        number_a = _phone(value_a)
        for id_b, value_b in b.phones:
            if value_a == value_b:
                continue
            number_b = _phone(value_b)
            if number_a and number_b and number_a.country_code != number_b.country_code:
                national = phonenumbers.national_significant_number(number_a)
                if len(national) >= _LAST_DIGITS and national == phonenumbers.national_significant_number(number_b):
                    return (
                        "phone_national_number",
                        f"same phone number {national} under country codes +{number_a.country_code} and "
                        f"+{number_b.country_code}",
                        [id_a, id_b],
                    )
            digits_a, digits_b = re.sub(r"\D", "", value_a), re.sub(r"\D", "", value_b)
            if (
                last_digits is None
                and min(len(digits_a), len(digits_b)) >= _LAST_DIGITS
                and digits_a[-_LAST_DIGITS:] == digits_b[-_LAST_DIGITS:]
            ):
                last_digits = (
                    "phone_last_digits",
                    f"phone numbers {value_a} and {value_b} end in the same {_LAST_DIGITS} digits",
                    [id_a, id_b],
                )
    return last_digits


def score_pair(a: CustomerProfile, b: CustomerProfile) -> FuzzyMatch:
    """Score two customers' groups (see the module docstring for the formula)."""
    name, name_reason = 0.0, None
    for name_a, holders_a in a.names.items():
        for name_b, holders_b in b.names.items():
            similarity, reason = name_similarity(name_a, name_b, max(holders_a, holders_b))
            if reason is not None and (name_reason is None or similarity > name):
                name, name_reason = similarity, reason
    reasons = [name_reason] if name_reason else []
    identifier_ids: list[int] = []
    doubt = 1.0 - name
    email = _shared_email(a, b)
    if email:
        reasons.append(email[0])
        identifier_ids += email[1]
        doubt *= 1.0 - WEIGHTS["email_local_part"]
    phone = _shared_phone(a, b)
    if phone:
        reasons.append(phone[1])
        identifier_ids += phone[2]
        doubt *= 1.0 - WEIGHTS[phone[0]]
    threads = sorted(a.threads & b.threads)
    if threads:
        shown = threads[0] if len(threads[0]) <= 80 else threads[0][:77] + "..."
        more = f" (and {len(threads) - 1} more)" if len(threads) > 1 else ""
        reasons.append(f"same conversation thread {shown}{more}")
        doubt *= 1.0 - WEIGHTS["thread"]
    return FuzzyMatch(score=round(1.0 - doubt, 4), reasons=reasons, identifier_ids=sorted(set(identifier_ids)))


async def _profiles(conn: asyncpg.Connection, roots: Sequence[UUID]) -> dict[UUID, CustomerProfile]:
    profiles: defaultdict[UUID, CustomerProfile] = defaultdict(CustomerProfile)
    for row in await conn.fetch(_Q["group_names"], roots):
        profiles[row["root_id"]].names[row["display_name"]] = row["holders"]
    for row in await conn.fetch(_Q["group_identifiers"], roots):
        kind = profiles[row["root_id"]].emails if row["kind"] == "email" else profiles[row["root_id"]].phones
        kind.append((row["id"], row["value"]))
    for row in await conn.fetch(_Q["group_threads"], roots):
        profiles[row["root_id"]].threads.add(row["thread_key"])
    return profiles


def _chunks(rows: Sequence[asyncpg.Record], size: int) -> Iterable[Sequence[asyncpg.Record]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def scan_fuzzy_suggestions(
    conn: asyncpg.Connection, *, min_score: float, limits: Mapping[str, int], limit: int | None = None
) -> FuzzyScanReport:
    """Suggest merging root customers whose names and shared attributes score at least `min_score`; `limits` are
    the per-kind identifier limits (a pair whose union breaks one is suggested as a conflict); at most `limit`
    candidate pairs are compared (None: all). Never merges."""
    if not 0 < min_score <= 1 or (limit is not None and limit < 0):
        raise BadRequest(f"a fuzzy scan needs 0 < min_score ≤ 1 and limit ≥ 0, not {min_score} and {limit}")
    async with conn.transaction():
        await conn.execute("select set_config('pg_trgm.similarity_threshold', $1, true)", str(CANDIDATE_SIMILARITY))
        candidates = await conn.fetch(_Q["candidates"], NEIGHBOURS, sorted(PLACEHOLDER_WORDS), limit)
    created = conflicts = 0
    for chunk in _chunks(candidates, CHUNK):
        profiles = await _profiles(conn, sorted({r["customer_a"] for r in chunk} | {r["customer_b"] for r in chunk}))
        found = []
        for row in chunk:
            match = score_pair(profiles[row["customer_a"]], profiles[row["customer_b"]])
            if match.score >= min_score:
                found.append(
                    {
                        "customer_a": row["customer_a"],
                        "customer_b": row["customer_b"],
                        "score": match.score,
                        "reasons": match.reasons,
                        "identifier_ids": match.identifier_ids,
                    }
                )
        if not found:
            continue
        for written in await conn.fetch(_Q["insert_suggestions"], found, dict(limits)):
            created += 1
            conflicts += written["status"] == "conflict"
    report = FuzzyScanReport(
        min_score=min_score, candidates_compared=len(candidates), suggestions_created=created, conflicts=conflicts
    )
    log.info("fuzzy_scan", **msgspec.structs.asdict(report))
    return report
