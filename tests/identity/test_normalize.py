"""Identifier normalization: formatting variants, junk, the optional equivalences and the block list."""

from __future__ import annotations

import re

import pytest

from schemas import Identifier, IdentifierKind, Verification
from unify.errors import ConfigurationError
from unify.identity import (
    DEFAULT_RULES,
    EQUIVALENCE_RULES,
    NormalizationRules,
    NormalizedIdentifier,
    normalize_identifier,
    normalize_identifiers,
    parse_rules,
)
from unify.identity._normalize import normalize_phone

ALL_RULES = NormalizationRules(equivalences=EQUIVALENCE_RULES)


def norm(kind: IdentifierKind, value: str, rules: NormalizationRules = DEFAULT_RULES, region: str = "US") -> str | None:
    normalized = normalize_identifier(Identifier(kind=kind, value=value), region, rules)
    return None if normalized is None else normalized.value


def ident(kind: IdentifierKind, value: str, verification: Verification = "unverified") -> Identifier:
    return Identifier(kind=kind, value=value, verification=verification)


# --- phones ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+14155550100",
        "+1 415-555-0100",
        "(415) 555 0100",
        "415-555-0100",
        "tel:+14155550100",
        "TEL:+1-415-555-0100",
        "whatsapp:+14155550100",
        "sip:+14155550100@pbx.example.com;user=phone",
        "sips:+14155550100@pbx.example.com",
        "415.555.0100 x204",
        "+1 415 555 0100 ext. 12",
        "  +1 (415) 555-0100  ",
    ],
)
def test_phone_formatting_variants(raw: str) -> None:
    assert norm("phone", raw) == "+14155550100"


def test_phone_default_region_applies_only_without_country_code() -> None:
    assert norm("phone", "020 7946 0018", region="GB") == "+442079460018"
    assert norm("phone", "+1 415 555 0100", region="GB") == "+14155550100"


@pytest.mark.parametrize(
    "raw",
    [
        "anonymous",
        "Anonymous",
        "WITHHELD",
        "restricted",
        "private",
        "unknown",
        "unavailable",
        "blocked",
        "null",
        "sip:anonymous@anonymous.invalid",
        "tel:withheld",
        "+266696687",
        "0000000000",
        "+1 000 000 0000",
        "000 000 0000 x12",
        "1234",
        "123 x4567",
        "",
        "   ",
        "not a number",
        "+999 123",
        # dialled locally only (no area code): two people in two cities would share it
        "555-0100",
        "555 0100",
        "7946 0958",
    ],
)
def test_junk_phones_normalize_to_none(raw: str) -> None:
    assert norm("phone", raw) is None


def test_phone_normalization_is_cached() -> None:
    normalize_phone.cache_clear()
    for _ in range(3):
        assert norm("phone", "(415) 555 0100", ALL_RULES) == "+14155550100"
    info = normalize_phone.cache_info()
    assert (info.misses, info.hits) == (1, 2)


# --- br-mobile-ninth-digit -----------------------------------------------------------------------------------------

BR_RULE = NormalizationRules(equivalences=frozenset({"br-mobile-ninth-digit"}))


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+55 11 8765-4321", "US", "+5511987654321"),
        ("+55 21 9876-5432", "US", "+5521998765432"),
        ("+55 61 7123-4567", "US", "+5561971234567"),
        ("+55 91 6123-4567", "US", "+5591961234567"),
        ("(11) 8765-4321", "BR", "+5511987654321"),
        ("whatsapp:+551187654321", "US", "+5511987654321"),
    ],
)
def test_br_old_mobile_gains_ninth_digit_with_rule(raw: str, region: str, expected: str) -> None:
    assert norm("phone", raw, BR_RULE, region) == expected
    assert norm("phone", raw, DEFAULT_RULES, region) == "+55" + expected[3:5] + expected[6:]


@pytest.mark.parametrize(
    "raw",
    [
        "+55 11 3456-7890",  # landline
        "+55 11 2345-6789",  # landline
        "+55 51 5123-4567",  # landline
        "+55 11 98765-4321",  # already nine digits
    ],
)
def test_br_landlines_and_new_mobiles_unchanged(raw: str) -> None:
    expected = "+" + re.sub(r"\D", "", raw)
    assert norm("phone", raw, BR_RULE) == expected
    assert norm("phone", raw) == expected


def test_br_rule_leaves_other_countries_alone() -> None:
    # Same national digits as an old Brazilian mobile, but another country code.
    assert norm("phone", "+1 118 765 4321", BR_RULE) == norm("phone", "+1 118 765 4321")
    assert norm("phone", "+44 1187 654321", BR_RULE) == "+441187654321"


def test_br_old_and_new_forms_dedupe_with_rule() -> None:
    identifiers = [ident("phone", "+55 11 8765-4321"), ident("phone", "+55 11 98765-4321", "authenticated")]
    assert normalize_identifiers(identifiers, "US", BR_RULE) == [
        NormalizedIdentifier("phone", "+5511987654321", "authenticated")
    ]
    assert len(normalize_identifiers(identifiers, "US")) == 2


# --- emails ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"Jane Doe" <Jane.Doe@Example.COM>', "jane.doe@example.com"),
        ("Jane Doe <jane.doe@example.com>", "jane.doe@example.com"),
        ("  JANE@EXAMPLE.COM  ", "jane@example.com"),
        ("jane@example.com.", "jane@example.com"),
        ("josé@bücher.de", "josé@xn--bcher-kva.de"),
        ("anna@straße.de", "anna@xn--strae-oqa.de"),  # IDNA 2008: not the different domain strasse.de
        ("anna@XN--STRAE-OQA.DE", "anna@xn--strae-oqa.de"),
        ("ops@mail_relay.example.com", "ops@mail_relay.example.com"),  # an ASCII domain is kept as written
        ("jane@example.com (Jane Doe)", "jane@example.com"),  # the old comment form of a display name
        ("Jane <jane+billing@example.com>", "jane+billing@example.com"),
        ("j.a.n.e@gmail.com", "j.a.n.e@gmail.com"),
        ("jane@googlemail.com", "jane@googlemail.com"),
    ],
)
def test_email_plain_normalization(raw: str, expected: str) -> None:
    assert norm("email", raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "noreply@example.com",
        "no-reply@example.com",
        "No_Reply+bounce@example.com",
        "do-not-reply@example.com",
        "donotreply@example.com",
        "postmaster@example.com",
        "MAILER-DAEMON@example.com",
        "bounce@example.com",
        "bounces-123@example.com",
        "not an address",
        "jane@localhost",
        "@example.com",
        "jane@",
        "a@b@example.com",
        "mailerdaemon@example.com",
        "notifications-noreply@example.com",
        "billing.no-reply@example.com",
        "ada@exam ple.com",  # a space is no part of an address
        "jane@exa..com",
        f"jane@{'a' * 64}.com",
    ],
)
def test_junk_emails_normalize_to_none(raw: str) -> None:
    assert norm("email", raw) is None
    assert norm("email", raw, ALL_RULES) is None


GMAIL_DOTS = NormalizationRules(equivalences=frozenset({"gmail-dots"}))
PLUS_TAGS = NormalizationRules(equivalences=frozenset({"plus-tags"}))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("j.a.n.e.doe@gmail.com", "janedoe@gmail.com"),
        ("Jane.Doe@GMail.com", "janedoe@gmail.com"),
        ("jane.doe@googlemail.com", "janedoe@gmail.com"),
        ("janedoe@googlemail.com", "janedoe@gmail.com"),
        ("jane.doe@example.com", "jane.doe@example.com"),
        ("jane.doe@gmail.com.example.com", "jane.doe@gmail.com.example.com"),
        ("jane.doe+news@gmail.com", "janedoe+news@gmail.com"),
    ],
)
def test_gmail_dots(raw: str, expected: str) -> None:
    assert norm("email", raw, GMAIL_DOTS) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane+billing@example.com", "jane@example.com"),
        ("Jane+Billing+2024@Example.com", "jane@example.com"),
        ("jane.doe+news@gmail.com", "jane.doe@gmail.com"),
        ("jane@example.com", "jane@example.com"),
        ("+tag@example.com", "+tag@example.com"),
    ],
)
def test_plus_tags(raw: str, expected: str) -> None:
    assert norm("email", raw, PLUS_TAGS) == expected


def test_email_rules_combined() -> None:
    assert norm("email", '"Jane" <Jane.Doe+Orders@GoogleMail.com>', ALL_RULES) == "janedoe@gmail.com"


def test_email_rules_off_by_default() -> None:
    assert DEFAULT_RULES.equivalences == frozenset()
    assert norm("email", "jane.doe+billing@googlemail.com") == "jane.doe+billing@googlemail.com"


def test_email_junk_still_caught_after_rules() -> None:
    assert norm("email", "mailer.daemon@gmail.com", ALL_RULES) is None
    assert norm("email", "n.o.r.e.p.l.y@gmail.com", ALL_RULES) is None
    assert norm("email", "n.o.r.e.p.l.y@gmail.com") == "n.o.r.e.p.l.y@gmail.com"


def test_email_variants_dedupe_only_with_rules() -> None:
    identifiers = [
        ident("email", "jane.doe@gmail.com"),
        ident("email", "JaneDoe+shop@googlemail.com", "signed"),
        ident("email", "Jane Doe <janedoe@gmail.com>"),
    ]
    assert normalize_identifiers(identifiers, "US", ALL_RULES) == [
        NormalizedIdentifier("email", "janedoe@gmail.com", "signed")
    ]
    assert [i.value for i in normalize_identifiers(identifiers, "US")] == [
        "jane.doe@gmail.com",
        "janedoe+shop@googlemail.com",
        "janedoe@gmail.com",
    ]


# --- other kinds -------------------------------------------------------------------------------------------------


def test_other_kinds_are_stripped_and_junk_dropped() -> None:
    assert norm("account", "  ACME-42 ") == "ACME-42"
    assert norm("chat", "whatsapp:jane") == "whatsapp:jane"
    assert norm("chat", " Intercom : User-77 ") == norm("chat", "intercom:User-77") == "intercom:User-77"
    assert norm("chat", "intercom:") is None and norm("chat", ":42") is None
    assert norm("external", "unknown") is None
    assert norm("account", "   ") is None
    for kind, value in [("chat", "a\x00b"), ("account", "A\x00"), ("external", "x\x1by"), ("email", "a\x00b@x.com")]:
        assert norm(kind, value) is None  # a control character: no one's identifier


# --- block list ----------------------------------------------------------------------------------------------------


def test_block_list_exact() -> None:
    rules = NormalizationRules(blocked=frozenset({("phone", "+18005550100"), ("account", "TEST-1")}))
    assert norm("phone", "1 (800) 555-0100", rules) is None
    assert norm("phone", "tel:+18005550100", rules) is None
    assert norm("phone", "+1 800 555 0101", rules) == "+18005550101"
    assert norm("account", " TEST-1 ", rules) is None
    assert norm("email", "+18005550100@example.com", rules) == "+18005550100@example.com"
    assert norm("phone", "1 (800) 555-0100") == "+18005550100"


def test_block_list_pattern() -> None:
    rules = NormalizationRules(
        blocked_patterns=(re.compile(r"^email:.*@example\.invalid$"), re.compile(r"^phone:\+1800"))
    )
    assert norm("email", "Anyone <Jane@Example.INVALID>", rules) is None
    assert norm("email", "jane@example.invalid.com", rules) == "jane@example.invalid.com"
    assert norm("phone", "800-555-0199", rules) is None
    assert norm("phone", "+1 888 555 0199", rules) == "+18885550199"


def test_block_list_applies_after_equivalences() -> None:
    rules = NormalizationRules(
        equivalences=frozenset({"gmail-dots", "plus-tags", "br-mobile-ninth-digit"}),
        blocked=frozenset({("email", "janedoe@gmail.com"), ("phone", "+5511987654321")}),
    )
    assert norm("email", "Jane.Doe+x@googlemail.com", rules) is None
    assert norm("phone", "+55 11 8765-4321", rules) is None
    assert norm("email", "jane.doe@gmail.com", NormalizationRules(blocked=rules.blocked)) == "jane.doe@gmail.com"


def test_rules_from_settings_text() -> None:
    rules = parse_rules("gmail-dots,plus-tags", "phone:+18005550100", r"^email:.*@example\.invalid$")
    assert rules.equivalences == {"gmail-dots", "plus-tags"}
    assert norm("email", "Jane.Doe+Work@gmail.com", rules) == "janedoe@gmail.com"
    assert norm("email", "jane.doe+work@example.com", rules) == "jane.doe@example.com"
    assert norm("phone", "+55 11 8765-4321", rules) == "+551187654321"
    assert norm("phone", "(800) 555-0100", rules) is None
    assert norm("email", "jane@example.invalid", rules) is None
    assert normalize_identifiers(
        [ident("phone", "800.555.0100"), ident("email", "x@example.invalid"), ident("email", "J.ane@gmail.com")],
        "US",
        rules,
    ) == [NormalizedIdentifier("email", "jane@gmail.com")]


def test_parse_rules_rejects_unknown_rule() -> None:
    with pytest.raises(ConfigurationError):
        parse_rules("gmail-dots,outlook-dots", "", "")


def test_rules_are_hashable() -> None:
    rules = parse_rules("gmail-dots,plus-tags,br-mobile-ninth-digit", "phone:+18005550100", r"^email:.*@x\.invalid$")
    assert hash(rules) == hash(
        parse_rules("gmail-dots,plus-tags,br-mobile-ninth-digit", "phone:+18005550100", r"^email:.*@x\.invalid$")
    )


# --- normalize_identifiers -----------------------------------------------------------------------------------------


def test_identifiers_dedupe_keeping_strongest_verification() -> None:
    identifiers = [
        ident("phone", "(415) 555 0100"),
        ident("phone", "tel:+14155550100", "carrier_attested"),
        ident("phone", "+1 415-555-0100"),
        ident("email", "Jane@Example.com", "authenticated"),
        ident("email", '"Jane" <jane@example.com>', "signed"),
        ident("phone", "anonymous", "authenticated"),
        ident("email", "noreply@example.com", "signed"),
    ]
    assert normalize_identifiers(identifiers, "US") == [
        NormalizedIdentifier("email", "jane@example.com", "authenticated"),
        NormalizedIdentifier("phone", "+14155550100", "carrier_attested"),
    ]


def test_identifiers_sorted_and_empty() -> None:
    assert normalize_identifiers([], "US") == []
    result = normalize_identifiers(
        [ident("phone", "+1 415 555 0199"), ident("account", "A-1"), ident("phone", "+1 415 555 0100")], "US"
    )
    assert result == sorted(result)
    assert [i.kind for i in result] == ["account", "phone", "phone"]
