"""Redaction: card numbers (with expiry and CVV), IBANs and national ids are masked before storage; nothing else is."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from schemas import InteractionEvent
from tests.events import native_event
from unify.privacy.redact import RedactionPolicy, is_card_number, redact_event, redact_text


def _event(external_id: str = "call-1001", **overrides: Any) -> InteractionEvent:
    return msgspec.convert(native_event(external_id, **overrides), InteractionEvent)


def test_chat_card_with_expiry_and_cvv_is_masked() -> None:
    text = "Hi! Please charge my card 4242 4242 4242 4242 exp 12/29 cvv 123 for the renewal."
    redacted, counts = redact_text(text)
    assert redacted == "Hi! Please charge my card [card ••••4242] exp [expiry] cvv [cvv] for the renewal."
    assert counts == {"card": 1, "expiry": 1, "cvv": 1}


def test_sms_card_with_dashes_is_masked() -> None:
    redacted, counts = redact_text("my new card is 4111-1111-1111-1111 pls update")
    assert redacted == "my new card is [card ••••1111] pls update"
    assert counts == {"card": 1}


def test_email_body_amex_is_masked() -> None:
    body = (
        "Hello team,\n\nplease use my Amex for the invoice:\n3782 822463 10005\nexpiry 12/2029, CVC: 1234\n\n"
        "Kind regards,\nAda"
    )
    redacted, counts = redact_text(body)
    assert "3782" not in redacted and "822463" not in redacted and "1234" not in redacted and "2029" not in redacted
    assert "[card ••••0005]\nexpiry [expiry], CVC: [cvv]" in redacted
    assert counts == {"card": 1, "expiry": 1, "cvv": 1}


@pytest.mark.parametrize(
    "number",
    ["4242424242424242", "5555555555554444", "2223003122003222", "378282246310005", "6011111111111117",
     "3056930009020004", "36227206271667", "3566002020360505", "6200000000000005", "6759649826438453"],
)  # fmt: skip
def test_test_cards_of_every_scheme_are_masked(number: str) -> None:
    redacted, counts = redact_text(f"card: {number}.")
    assert redacted == f"card: [card ••••{number[-4:]}]."
    assert counts == {"card": 1}


def test_non_luhn_order_number_is_untouched() -> None:
    text = "Order number 4242424242424241 was shipped; order 1234-5678-9012-3456 too."
    assert not is_card_number("4242424242424241")
    assert redact_text(text) == (text, {})


def test_luhn_valid_number_without_issuer_prefix_or_with_wrong_length_is_untouched() -> None:
    # 79927398713 is the textbook Luhn example; 1… and 9… are no card issuer; a 15-digit Visa does not exist.
    text = "ref 1000000000000008, ref 9999999999999995, ref 424242424242421, claim 79927398713"
    assert redact_text(text) == (text, {})


def test_phone_numbers_are_untouched() -> None:
    text = "Call me at +1 415 555 0100, (415) 555-0100, +44 7700 900123 or 4155550100. Ext 12345."
    assert redact_text(text) == (text, {})


def test_dates_amounts_and_ids_are_untouched() -> None:
    text = (
        "On 2026-11-02 at 09:30 I paid $1,234.56 (EUR 4242.42) for 12/29 items; cvv 123 alone stays. "
        "Ticket 550e8400-e29b-41d4-a716-446655440000, hash 9f86d081884c7d659a2feaa0c55ad015, "
        "tracking 12345678904242424242424242, order4242424242424242."
    )
    assert redact_text(text) == (text, {})


def test_uuids_made_mostly_of_digits_are_untouched() -> None:
    # The first three groups read as a Luhn-valid UnionPay number, but they are joined to the hex rest of the UUID.
    text = "ticket 62527990-7794-1135-b115-8d5c0409e76a and a716-4242-4242-4242-4242"
    assert redact_text(text) == (text, {})


def test_no_partial_match_inside_a_longer_digit_run() -> None:
    for text in ("442424242424242424242", "00004242424242424242", "4242424242424242000", "x 44242424242424242424 y"):
        assert redact_text(text) == (text, {}), text


def test_several_cards_in_one_text() -> None:
    text = "first 4242 4242 4242 4242, then 5555-5555-5555-4444 and finally 4000 0566 5566 5556 4111 1111 1111 1111"
    redacted, counts = redact_text(text)
    assert redacted == ("first [card ••••4242], then [card ••••4444] and finally [card ••••5556] [card ••••1111]")
    assert counts == {"card": 4}


def test_bare_expiry_and_cvv_right_after_a_card() -> None:
    redacted, counts = redact_text("4242 4242 4242 4242 12/29 123")
    assert redacted == "[card ••••4242] [expiry] [cvv]"
    assert counts == {"card": 1, "expiry": 1, "cvv": 1}


def test_bare_cvv_right_after_a_card() -> None:
    assert redact_text("4242 4242 4242 4242 321 thanks") == ("[card ••••4242] [cvv] thanks", {"card": 1, "cvv": 1})


def test_cvv_and_expiry_before_the_card_and_far_from_it() -> None:
    near = "security code 123, valid thru 01/30, card 6011111111111117"
    assert redact_text(near) == (
        "security code [cvv], valid thru [expiry], card [card ••••1117]",
        {"card": 1, "cvv": 1, "expiry": 1},
    )
    far = "card 4242424242424242. " + "Lots of unrelated words in between here, " * 3 + "cvv 321 exp 11/28"
    redacted, counts = redact_text(far)
    assert redacted.endswith("cvv 321 exp 11/28")
    assert counts == {"card": 1}


def test_spelled_out_digits_of_a_transcript_are_masked() -> None:
    redacted, counts = redact_text("caller: it is 4 2 4 2 4 2 4 2 4 2 4 2 4 2 4 2 and the code is 1 2 3")
    assert redacted == "caller: it is [card ••••4242] and the code is 1 2 3"
    assert counts == {"card": 1}


def test_card_inside_a_long_run_of_digit_groups_is_masked() -> None:
    # More than 32 groups: the Luhn sums come from prefix sums instead of one check per window. "4 4 8 8 … 8" (19
    # digits) is a valid Visa number too and overlaps the card: both are masked, the 16-digit card is the one shown.
    spelled = " ".join("5555555555554444")
    text = f"numbers {' '.join('7' * 20)} {spelled} {' '.join('8' * 20)} end"
    redacted, counts = redact_text(text)
    assert redacted == "numbers " + " ".join("7" * 20) + " [card ••••4444] 8 8 8 end"
    assert counts == {"card": 1}


def test_overlapping_candidates_are_all_masked() -> None:
    # A card followed by its CVV: 4242424242424242 and 4242424242424242 055 (19 digits, Luhn-valid) are both
    # candidates; nothing of either stays, the 16-digit card is the one shown.
    assert is_card_number("4242424242424242055")
    assert redact_text("card 4242 4242 4242 4242 055 thanks") == ("card [card ••••4242] thanks", {"card": 1})


def test_random_cards_in_random_text_are_always_masked() -> None:
    rng = random.Random(20261102)
    prefixes = ("4", "51", "2720", "34", "37", "6011", "644", "65", "300", "36", "38", "3528", "62", "50", "67")
    lengths = {"4": 16, "51": 16, "2720": 16, "34": 15, "37": 15, "300": 14, "36": 14}
    words = ["hi", "my", "card", "is", "thanks", "order", "call", "me", ",", ".", ":", "(", ")", "!"]
    for _ in range(500):
        prefix = rng.choice(prefixes)
        body = prefix + "".join(
            rng.choice("0123456789") for _ in range(lengths.get(prefix, rng.randint(16, 19)) - 1 - len(prefix))
        )
        number = next(body + d for d in "0123456789" if is_card_number(body + d))
        separator = rng.choice(["", " ", "-"])
        written = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
        before = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        after = " ".join(rng.choices(words, k=rng.randint(0, 6)))
        redacted, counts = redact_text(f"{before} {written} {after}")
        assert counts == {"card": 1}, (written, redacted)
        # A grouped 17–19 digit number whose first 16 digits are a valid number as well reads as a card and its CVV:
        # all of it is masked, the first 16 are shown.
        ambiguous = separator and len(number) > 16 and is_card_number(number[:16])
        shown = number[12:16] if ambiguous else number[-4:]
        assert redacted == f"{before} [card ••••{shown}] {after}", written


def test_full_width_digits_in_cjk_text_are_masked() -> None:
    redacted, counts = redact_text("カード番号は４２４２４２４２４２４２４２４２です")
    assert redacted == "カード番号は[card ••••4242]です"
    assert counts == {"card": 1}


def test_iban_only_when_enabled() -> None:
    text = "Please refund to IBAN DE89 3704 0044 0532 0130 00 or gb82west12345698765432."
    assert redact_text(text) == (text, {})
    redacted, counts = redact_text(text, RedactionPolicy(iban=True))
    assert redacted == "Please refund to IBAN [iban ••••3000] or [iban ••••5432]."
    assert counts == {"iban": 2}


def test_iban_with_bad_check_digits_is_untouched() -> None:
    text = "IBAN DE88 3704 0044 0532 0130 00, NO93 8601 1117 948"
    assert redact_text(text, RedactionPolicy(iban=True)) == (text, {})


def test_national_ids_only_when_enabled() -> None:
    text = "SSN 123-45-6789, not 000-12-3456 nor 666-12-3456 nor 912-34-5678; NINO AB 12 34 56 C and CE123456D."
    assert redact_text(text) == (text, {})
    redacted, counts = redact_text(text, RedactionPolicy(national_ids=True))
    assert redacted == ("SSN [ssn], not 000-12-3456 nor 666-12-3456 nor 912-34-5678; NINO [nino] and [nino].")
    assert counts == {"ssn": 1, "nino": 2}


def test_redact_event_covers_every_free_text_field() -> None:
    event = _event(
        "chat-1",
        channel="chat",
        details={"type": "chat", "platform": "web"},
        subject="card 4111 1111 1111 1111",
        text="use 4242 4242 4242 4242 exp 12/29 cvv 123",
        snippet="use 4242 4242 4242 4242",
        reason="refund 5555555555554444",
        disposition="paid with 378282246310005",
        attributes={"note": "cc 6011111111111117", "plan": "gold"},
        customer={"identifiers": [{"kind": "chat", "value": "web:v1"}], "display_name": "Ada 4242424242424242"},
    )
    redacted, counts = redact_event(event)
    assert redacted is not event
    assert redacted.subject == "card [card ••••1111]"
    assert redacted.text == "use [card ••••4242] exp [expiry] cvv [cvv]"
    assert redacted.snippet == "use [card ••••4242]"
    assert redacted.reason == "refund [card ••••4444]"
    assert redacted.disposition == "paid with [card ••••0005]"
    assert redacted.attributes == {"note": "cc [card ••••1117]", "plan": "gold"}
    assert redacted.customer.display_name == "Ada [card ••••4242]"
    assert redacted.customer.identifiers == event.customer.identifiers
    assert counts == {"card": 7, "expiry": 1, "cvv": 1}
    # The original is untouched and everything else is carried over.
    assert event.text == "use 4242 4242 4242 4242 exp 12/29 cvv 123"
    assert (
        msgspec.structs.replace(
            redacted,
            subject=event.subject,
            text=event.text,
            snippet=event.snippet,
            reason=event.reason,
            disposition=event.disposition,
            attributes=event.attributes,
            customer=event.customer,
        )
        == event
    )


def test_redact_event_without_findings_returns_the_same_object() -> None:
    event = _event(
        text="Hi, I was charged twice this month, order 1234567812345678, call me on +1 415 555 0100.",
        subject="Duplicate charge",
        attributes={"plan": "gold", "order": "1234567812345678"},
    )
    redacted, counts = redact_event(event)
    assert redacted is event
    assert counts == {}


def test_redact_text_without_findings_returns_the_same_string() -> None:
    text = "Hello, nothing sensitive in here at all, just words. " * 4
    redacted, counts = redact_text(text)
    assert redacted is text
    assert not counts
