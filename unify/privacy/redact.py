"""Redaction of payment card numbers (and, as settings, IBANs and national ids) in free text, before storage.

Pure and fast, no I/O: it runs on every ingested event. ``redact_text`` masks one string, ``redact_event`` the
free-text fields of an ``InteractionEvent``; both report how many of each kind they masked (``card``, ``expiry``,
``cvv``, ``iban``, ``ssn``, ``nino``).

What is detected
----------------
- **Card numbers** (always): 13–19 digits, in one piece or in groups separated by single spaces, dashes, no-break
  or ideographic spaces (``4242 4242 4242 4242``, ``4111-1111-1111-1111``, ``3782 822463 10005``, a transcript's
  ``4 2 4 2 …``), that pass the Luhn check AND start with a known issuer prefix with a length valid for that issuer
  (``_ISSUERS``: Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro). Full-width and other Unicode
  digits count. Replaced by ``[card ••••4242]``: the last four stay, as on a receipt.

  Only whole groups are taken, never digits inside a longer unbroken digit run or glued to a Latin letter
  (``order4242…``; CJK text, which has no spaces, does not count as glued). A run joined by a dash to a hex id
  (``62527990-7794-1135-b115-…``: UUIDs) is left alone; so are a phone's country code after ``+`` and a group that
  continues a decimal or a date (``0.4242…``, ``… 12/29``), unless the rest of the run holds no card without them.
  When candidates in a run overlap (a card and its CVV are a valid 19-digit number too), all of them are masked, so
  no digit of the real card stays whichever it is; the card shown is the most card-like: grouped as cards are
  printed, then the commonest length (16, 15, 14, 13, 19, 17, 18), then the leftmost.
- **Expiry and CVV next to a card** (always), within 40 characters before or after it; only the value is
  replaced, the keyword stays: ``[expiry]`` for a bare ``12/29`` or ``12/2029`` (two-digit month, slash) and, after
  a keyword (exp, exp., expiry, expires, expiration (date), valid thru/through/until, good thru), also ``1/29``,
  ``12-29``, ``12.2029``; ``[cvv]`` for 3–4 digits after a keyword (cvv, cvv2, cvc, cvc2, cvn, cid, csc, security
  code, sec code, card verification value/code/number, verification code) and for bare 3–4 digits right after the
  card or after its expiry (``4242 … 4242 123``, ``12/29 123``). A lone ``123`` elsewhere is not masked.
- **IBAN** (``RedactionPolicy.iban``): a country code from the SWIFT IBAN registry with that country's exact length
  (``_IBAN_LENGTHS``), upper or lower case, compact or in groups separated by single spaces, and a valid ISO 7064
  mod-97 check → ``[iban ••••1234]``.
- **National ids** (``RedactionPolicy.national_ids``), deliberately narrow to stay clear of phone numbers and
  references: a US SSN only in its dashed form ``AAA-GG-SSSS``, without the ranges the SSA never issues (area 000,
  666, 900–999; group 00; serial 0000) → ``[ssn]``; a UK National Insurance number (prefix letters from HMRC's
  allowed sets, not BG/GB/KN/NK/NT/TN/ZZ; six digits; suffix A–D; upper case; compact or ``AB 12 34 56 C``) →
  ``[nino]``.

Performance
-----------
``timeit`` medians on CPython 3.11.7, on a shared 2-vCPU machine under load from other jobs (runs varied by up to
30 %; an idle machine will be faster), default policy:

- a 205-character chat message without digits: 1.5–3 µs. The pre-check counts ASCII digits with
  ``bytes.translate`` and returns before any regex runs; non-ASCII text adds a scan for other Unicode digits (3–4 µs);
- the same with an order number, a date, an amount and a phone number (digits, no card): ~15 µs;
- the same with one card, its expiry and CVV: 60–90 µs (both policy settings on: ~100–120 µs);
- ``redact_event`` on a chat event without any number (7 fields): 9–12 µs, returning the same object; with one
  card in the text: ~90–100 µs;
- 1 MB (the largest ``text``) of prose: ~1.5 ms; of pathological digit groups (``4 4 4 …``, ``4242 4242 …``, a card
  every 45 characters): ~1–1.3 s, linear in the size.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

import msgspec

from schemas import CustomerParty, InteractionEvent

__all__ = ["DEFAULT", "RedactionPolicy", "is_card_number", "redact_event", "redact_text"]


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    """Which detectors run besides card numbers (always on, with the expiry and CVV written next to them)."""

    iban: bool = False
    national_ids: bool = False  # US SSN (dashed) and UK NINO, see the module docstring


DEFAULT = RedactionPolicy()

# --- card numbers -------------------------------------------------------------------------------------------------

_MIN_CARD, _MAX_CARD = 13, 19
_WINDOW = 40  # how far from a card an expiry or CVV is looked for

# Issuer prefix ranges (compared on the first 2, 3 or 4 digits) and the lengths each issuer issues.
# Sources: ISO/IEC 7812 issuer tables as published by the schemes (Wikipedia "Payment card number", Cybersource's
# card type identification). Maestro's 12-digit cards are below the 13-digit floor.
_ISSUERS: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    # (prefix length, low, high, valid lengths)
    (1, 4, 4, frozenset({13, 16, 19})),  # Visa (incl. Electron)
    (2, 51, 55, frozenset({16})),  # Mastercard
    (4, 2221, 2720, frozenset({16})),  # Mastercard 2-series
    (2, 34, 34, frozenset({15})),  # American Express
    (2, 37, 37, frozenset({15})),  # American Express
    (4, 6011, 6011, frozenset(range(16, 20))),  # Discover
    (3, 644, 649, frozenset(range(16, 20))),  # Discover
    (2, 65, 65, frozenset(range(16, 20))),  # Discover
    (3, 300, 305, frozenset(range(14, 20))),  # Diners Club (Carte Blanche / International)
    (4, 3095, 3095, frozenset(range(14, 20))),  # Diners Club International
    (2, 36, 36, frozenset(range(14, 20))),  # Diners Club International
    (2, 38, 39, frozenset(range(14, 20))),  # Diners Club International
    (4, 3528, 3589, frozenset(range(16, 20))),  # JCB
    (2, 62, 62, frozenset(range(16, 20))),  # UnionPay
    (2, 50, 50, frozenset(range(13, 20))),  # Maestro
    (2, 56, 69, frozenset(range(13, 20))),  # Maestro
)

# A run of digit groups joined by single separators (space, dash, no-break or ideographic space). Each group is taken
# whole (possessive), so a window never starts or ends inside a group; trailing groups are given back only to find a
# run that is not glued to a word. Only ASCII letters and digits count as "a word": CJK text puts digits right after
# letters.
_RUN = re.compile(r"\d(?<![A-Za-z0-9_]\d)(?<!\d\d)\d*+(?:[ \u00a0\u3000-]\d++)*(?![A-Za-z0-9_])(?!\d)")
_SEPARATOR = re.compile(r"[ \u00a0\u3000-]")
# A hex id (all hex digits, at least one a–f: a UUID's groups) joined by a dash right before or after a run.
_HEX_ID_BEFORE = re.compile(r"(?<![A-Za-z0-9_])(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{1,64}-\Z")
_HEX_ID_AFTER = re.compile(r"-(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{1,64}(?![A-Za-z0-9_])")

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
_DIGIT_BYTES = b"0123456789"
_OTHER_DIGIT = re.compile(r"[^\x00-\x7f\D]")


def _ascii(digits: str) -> str:
    return digits if digits.isascii() else "".join(str(int(ch)) for ch in digits)


def _luhn_ok(digits: str) -> bool:
    total = sum(map(int, digits[-1::-2])) + sum(_DOUBLED[int(ch)] for ch in digits[-2::-2])
    return total % 10 == 0


@functools.cache  # at most 10 000 prefixes
def _issuer_lengths(prefix: str) -> tuple[int, ...]:
    """The card lengths some issuer gives to numbers starting with these 4 digits, longest first."""
    lengths: set[int] = set()
    for size, low, high, valid in _ISSUERS:
        if low <= int(prefix[:size]) <= high:
            lengths |= valid
    return tuple(sorted(lengths, reverse=True))


def is_card_number(digits: str) -> bool:
    """Whether a string of ASCII digits is a plausible payment card number: issuer prefix, length and Luhn."""
    return (
        _MIN_CARD <= len(digits) <= _MAX_CARD
        and digits.isascii()
        and digits.isdigit()
        and len(digits) in _issuer_lengths(digits[:4])
        and _luhn_ok(digits)
    )


def _cards_in(text: str, start: int, end: int) -> list[tuple[int, int, list[str]]]:
    """The card numbers in the run text[start:end], as (start, end, last four digits of each card in the span).

    A run joined by a dash to a hex id is part of that id (a UUID) and holds no card. A first group that belongs to
    something else (a phone's country code after `+`, the rest of a decimal or a date) and a last group that
    continues into a decimal or a date are left out; only if the run holds no card without them are they considered
    after all (a leak is worse than an over-redaction)."""
    if (text[start - 1 : start] == "-" and _HEX_ID_BEFORE.search(text, max(0, start - 66), start)) or (
        text[end : end + 1] == "-" and _HEX_ID_AFTER.match(text, end)
    ):
        return []
    raw = text[start:end]
    groups = _SEPARATOR.split(raw)  # separators are one character each, so positions follow from the lengths
    if not raw.isascii():
        groups = [_ascii(group) for group in groups]
    first, last = 0, len(groups)
    before = text[start - 1] if start else ""
    if before == "+" or (before in (".", ",", "/") and start >= 2 and text[start - 2].isdigit()):
        first = 1
    if end + 1 < len(text) and text[end] in ".,/" and text[end + 1].isdigit():
        last -= 1
    cards = _cards_in_groups(groups[first:last], start + len(groups[0]) + 1 if first else start)
    if not cards and (first, last) != (0, len(groups)):
        cards = _cards_in_groups(groups, start)
    return cards


def _window_luhn(digits: str) -> Callable[[int, int], bool]:
    """A Luhn check of any window digits[a:b] in constant time, from two prefix sums.

    The last digit is kept, the one before doubled, and so on: for a window ending at an even offset the digits at
    even offsets are kept and the odd ones doubled (sums_even), for one ending at an odd offset the other way round."""
    values = list(map(int, digits))
    doubled = list(map(_DOUBLED.__getitem__, values))
    keep_even, keep_odd = values[:], doubled[:]
    keep_even[1::2], keep_odd[1::2] = doubled[1::2], values[1::2]
    sums_even = list(accumulate(keep_even, initial=0))
    sums_odd = list(accumulate(keep_odd, initial=0))

    def luhn_ok(a: int, b: int) -> bool:
        sums = sums_even if (b - 1) % 2 == 0 else sums_odd
        return (sums[b] - sums[a]) % 10 == 0

    return luhn_ok


def _cards_in_groups(groups: list[str], base: int) -> list[tuple[int, int, list[str]]]:
    """The spans of card numbers made of whole, consecutive groups (the first at text position base, each separated
    from the next by one character), with the last four digits of each card in the span.

    Where candidates overlap (a card followed by a CVV or a year that together make another valid number, digits
    read out one at a time), the span covers all of them, so that no digit of the real card is left whichever it
    is; the cards shown are the most card-like that do not overlap: grouped as cards are printed, then the commonest
    length, then the leftmost.

    Linear in the number of groups: per group start, only the lengths its issuer allows are looked at, and in a long
    run the Luhn sum of any window comes from two prefix sums."""
    digits = "".join(groups)
    n = len(digits)
    if n < _MIN_CARD:
        return []
    if len(groups) == 1:
        return [(base, base + n, [digits[-4:]])] if is_card_number(digits) else []
    ends = list(accumulate(map(len, groups)))  # digit offset after each group
    group_ending_at = dict(zip(ends, range(len(groups)), strict=True))
    luhn_ok = _window_luhn(digits) if len(groups) > 32 else lambda a, b: _luhn_ok(digits[a:b])
    lengths = [len(group) for group in groups]
    found: list[tuple[int, int, int, int]] = []  # (first group, last group, first digit, end digit), by first group
    for i, a in enumerate((0, *ends[:-1])):
        if n - a < _MIN_CARD:
            break
        if digits[a] not in "23456":  # no issuer starts with 0, 1, 7, 8 or 9
            continue
        for length in _issuer_lengths(digits[a : a + 4]):
            b = a + length
            j = group_ending_at.get(b)
            if j is not None and luhn_ok(a, b):
                found.append((i, j, a, b))
    if not found:
        return []
    # The cards shown: the most card-like first, none overlapping another.
    ranked = sorted(
        found, key=lambda w: (not _printed_grouping(lengths[w[0] : w[1] + 1]), _LENGTH_RANK[w[3] - w[2]], w[0])
    )
    used = bytearray(len(groups))
    shown: list[tuple[int, str]] = []  # (first group, last four)
    for i, j, _, b in ranked:
        if used.find(1, i, j + 1) < 0:
            used[i : j + 1] = b"\x01" * (j + 1 - i)
            shown.append((i, digits[b - 4 : b]))
    shown.sort()
    # The masked spans: overlapping candidates merged. Group k starts k separators after its digit offset.
    spans: list[tuple[int, int, list[str]]] = []
    first, last, start_digit = found[0][0], found[0][1], found[0][2]
    k = 0
    for i, j, a, _ in [*found[1:], (len(groups), len(groups), n, n)]:
        if i > last:
            last_fours = []
            while k < len(shown) and shown[k][0] <= last:
                last_fours.append(shown[k][1])
                k += 1
            spans.append((base + start_digit + first, base + ends[last] + last, last_fours))
            first, start_digit = i, a
        last = max(last, j) if i <= last else j
    return spans


# Card lengths, commonest first.
_LENGTH_RANK = {length: rank for rank, length in enumerate((16, 15, 14, 13, 19, 17, 18))}


def _printed_grouping(lengths: list[int]) -> bool:
    """Whether digit groups of these lengths are grouped the way card numbers are printed or read out: 4-4-4-4
    (any short last group: 4-4-4-4-3, 4-4-4-1), 4-6-5 and 4-6-4 (Amex, Diners), or one digit at a time."""
    return (
        all(length == 4 for length in lengths[:-1])
        or lengths in ([4, 6, 5], [4, 6, 4])
        or all(length == 1 for length in lengths)
    )


# --- expiry and CVV next to a card -------------------------------------------------------------------------------

_S = r"\s{0,3}"
# Values are found first (digits are rare, so the scan is fast), then told apart by what precedes them.
_VALUE = re.compile(r"\d+(?:\s?[/.-]\s?\d+)?")
_EXPIRY_VALUE = re.compile(r"(?:0?[1-9]|1[0-2])\s?(?P<sep>[/.-])\s?(?:20)?\d\d")
_CVV_VALUE = re.compile(r"\d{3,4}")
# A keyword right before a value (searched in the text before it, `\Z` being the value's start).
_EXPIRY_KEYWORD = re.compile(
    rf"(?i)\b(?:exp(?:iry|iration|ires?|\.)?|valid{_S}(?:thru|through|until|till|to)|good{_S}thru)"
    rf"(?:{_S}date)?{_S}(?:is{_S}|on{_S})?[:=#-]?{_S}\Z"
)
_CVV_KEYWORD = re.compile(
    rf"(?i)\b(?:cvv2?|cvc2?|cvn|cid|csc|sec(?:urity|\.)?{_S}code|card{_S}verification(?:{_S}(?:value|code|number))?"
    rf"|verification{_S}(?:value|code|number)){_S}(?:code{_S}|no\.?{_S}|number{_S}|\#{_S})?(?:is{_S})?[:=#-]?{_S}\Z"
)
_MAX_KEYWORD = 48  # longer than any keyword with its spacing above
# A bare CVV right after a card or after an expiry date.
_CVV_AFTER = re.compile(r"[\s,;/-]{1,3}(\d{3,4})(?![\d/]|[.,]\d)")
_MAX_VALUE = 12  # longer than any value


class _Found:
    """The spans to replace, with a mask over the text so that an overlap test costs the span's length."""

    __slots__ = ("mask", "spans")

    def __init__(self, size: int) -> None:
        self.spans: list[tuple[int, int, str, str, int]] = []  # (start, end, replacement, kind, how many)
        self.mask = bytearray(size)

    def free(self, start: int, end: int) -> bool:
        return self.mask.find(1, start, end) < 0

    def add(self, start: int, end: int, replacement: str, kind: str, count: int = 1) -> None:
        self.spans.append((start, end, replacement, kind, count))
        self.mask[start:end] = b"\x01" * (end - start)


def _near_cards(text: str, found: _Found) -> None:
    """Add the expiry dates and CVVs within _WINDOW characters of the cards (all that was found so far, in order).

    The neighbourhoods of cards close to each other are scanned together, each character once."""
    cards = [(start, end) for start, end, _, _, _ in found.spans]
    starts = [start for start, _ in cards]
    regions: list[list[int]] = []
    for card_start, card_end in cards:
        lo, hi = max(0, card_start - _WINDOW - _MAX_VALUE), card_end + _WINDOW + _MAX_VALUE
        if regions and lo <= regions[-1][1]:
            regions[-1][1] = hi
        else:
            regions.append([lo, hi])
    for _, card_end in cards:
        cvv = _CVV_AFTER.match(text, card_end)
        if cvv and found.free(cvv.start(1), cvv.end(1)):
            found.add(cvv.start(1), cvv.end(1), "[cvv]", "cvv")
    for lo, hi in regions:
        for m in _VALUE.finditer(text, lo, hi):
            start, end = m.span()
            before, after = text[start - 1 : start], text[end : end + 1]
            if (
                before == "/"
                or before.isdigit()
                or (before == "." and text[start - 2 : start - 1].isdigit())
                or after == "/"
                or after.isdigit()
            ):
                continue  # part of something longer: a date, a decimal, a number cut by the region
            if not found.free(start, end):
                continue  # part of a card
            k = bisect.bisect_right(starts, start)  # cards[k - 1] is the last card starting before the value
            if not (
                (k > 0 and 0 <= start - cards[k - 1][1] <= _WINDOW)
                or (k < len(cards) and 0 <= cards[k][0] - end <= _WINDOW)
            ):
                continue
            value = m.group()
            keyword_from = max(0, start - _MAX_KEYWORD)
            expiry = _EXPIRY_VALUE.fullmatch(value)
            if expiry and (
                (expiry["sep"] == "/" and value[1] not in "/ ")  # a bare MM/YY or MM/YYYY
                or _EXPIRY_KEYWORD.search(text, keyword_from, start)
            ):
                found.add(start, end, "[expiry]", "expiry")
                cvv = _CVV_AFTER.match(text, end)
                if cvv and found.free(cvv.start(1), cvv.end(1)):
                    found.add(cvv.start(1), cvv.end(1), "[cvv]", "cvv")
            elif _CVV_VALUE.fullmatch(value) and _CVV_KEYWORD.search(text, keyword_from, start):
                found.add(start, end, "[cvv]", "cvv")


# --- IBAN -------------------------------------------------------------------------------------------------------

# Lengths per country from the SWIFT IBAN registry (ISO 13616).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip
_IBAN_LETTERS = {ord(letter): str(value) for value, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", start=10)}
# Zero-width, so that a rejected candidate does not swallow an IBAN starting inside it.
_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])(?=([A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,40}))")


def _iban_at(start: int, candidate: str) -> tuple[int, int, str] | None:
    """The IBAN at the start of candidate (spanning text[start:end]), if the country's length and mod-97 agree."""
    length = _IBAN_LENGTHS.get(candidate[:2].upper())
    if length is None or len(candidate) - candidate.count(" ") < length:
        return None
    end = length  # grows until candidate[:end] holds `length` characters besides the spaces
    while (needed := length + candidate.count(" ", 0, end)) != end:
        end = needed
    if end < len(candidate) and candidate[end] != " ":  # the IBAN would continue into more characters
        return None
    iban = candidate[:end].replace(" ", "").upper()
    rearranged = iban[4:] + iban[:4]
    if int(rearranged.translate(_IBAN_LETTERS)) % 97 != 1:
        return None
    return start, start + end, iban


# --- national ids ------------------------------------------------------------------------------------------------

_SSN = re.compile(r"(?<![\w-])(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])", re.ASCII)
_NINO = re.compile(
    r"(?<![\w])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)", re.ASCII
)

# --- the redaction ------------------------------------------------------------------------------------------------


def _has_digits(text: str, minimum: int) -> bool:
    """Whether text has at least `minimum` ASCII digits, or any other decimal digit (full-width, Arabic-Indic…)."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) - len(data.translate(None, _DIGIT_BYTES)) >= minimum:
        return True
    return not text.isascii() and _OTHER_DIGIT.search(text) is not None


def _min_digits(policy: RedactionPolicy) -> int:
    if policy.iban:
        return 2  # an IBAN may be mostly letters
    if policy.national_ids:
        return 6  # a NINO has six digits
    return _MIN_CARD


def redact_text(text: str, policy: RedactionPolicy = DEFAULT) -> tuple[str, Counter[str]]:
    """Mask card numbers (with the expiry and CVV next to them) and the detectors the policy enables.

    Returns the text (the same object when nothing was found) and how many of each kind were masked."""
    counts: Counter[str] = Counter()
    minimum = _min_digits(policy)
    if len(text) < minimum or not _has_digits(text, minimum):
        return text, counts

    found = _Found(len(text))
    for run in _RUN.finditer(text):
        raw = run.group()
        if len(raw) - raw.count(" ") - raw.count("-") - raw.count("\u00a0") - raw.count("\u3000") < _MIN_CARD:
            continue
        for start, end, last_fours in _cards_in(text, run.start(), run.end()):
            replacement = " ".join(f"[card ••••{last_four}]" for last_four in last_fours)
            found.add(start, end, replacement, "card", len(last_fours))
    if found.spans:
        _near_cards(text, found)

    if policy.iban:
        for m in _IBAN_CANDIDATE.finditer(text):
            iban = _iban_at(m.start(), m.group(1))
            if iban and found.free(iban[0], iban[1]):
                found.add(iban[0], iban[1], f"[iban ••••{iban[2][-4:]}]", "iban")

    if policy.national_ids:
        for pattern, replacement, kind in ((_SSN, "[ssn]", "ssn"), (_NINO, "[nino]", "nino")):
            for m in pattern.finditer(text):
                if found.free(m.start(), m.end()):
                    found.add(m.start(), m.end(), replacement, kind)

    if not found.spans:
        return text, counts
    parts: list[str] = []
    position = 0
    for start, end, replacement, kind, count in sorted(found.spans):
        parts.append(text[position:start])
        parts.append(replacement)
        position = end
        counts[kind] += count
    parts.append(text[position:])
    return "".join(parts), counts


def redact_event(event: InteractionEvent, policy: RedactionPolicy = DEFAULT) -> tuple[InteractionEvent, dict[str, int]]:
    """Redact the free-text fields of an event: text, subject, snippet, reason, disposition, every attribute value
    and the customer's display name.

    Returns the event (the same object when nothing was found, else a copy) and the counts per kind
    (``{"card": 1, "cvv": 1}``; ``{}`` when nothing was found)."""
    counts: Counter[str] = Counter()
    changes: dict[str, object] = {}
    for name in ("text", "subject", "snippet", "reason", "disposition"):
        value = getattr(event, name)
        if value:
            redacted, found = redact_text(value, policy)
            if found:
                changes[name] = redacted
                counts.update(found)
    if event.attributes:
        attributes: dict[str, str] | None = None
        for key, value in event.attributes.items():
            redacted, found = redact_text(value, policy)
            if found:
                if attributes is None:
                    attributes = dict(event.attributes)
                attributes[key] = redacted
                counts.update(found)
        if attributes is not None:
            changes["attributes"] = attributes
    display_name = event.customer.display_name
    if display_name:
        redacted, found = redact_text(display_name, policy)
        if found:
            customer: CustomerParty = msgspec.structs.replace(event.customer, display_name=redacted)
            changes["customer"] = customer
            counts.update(found)
    if not changes:
        return event, {}
    return msgspec.structs.replace(event, **changes), {kind: n for kind, n in counts.items() if n}
