"""The form parser every form webhook (Twilio, Vonage, SendGrid…) goes through agrees with the standard library's."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors._base import MAX_FORM_FIELDS, form_pairs

# Characters that matter to form encoding, and a few that do not.
_FORM_TEXT = st.text(alphabet="ab=&+%20C3A9zZ9é ;", max_size=60)


def _standard(text: str) -> list[tuple[str, str]] | str:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FORM_FIELDS)
    except ValueError as exc:
        return f"ValueError: {exc}"


def _ours(text: str) -> list[tuple[str, str]] | str:
    try:
        return form_pairs(text)
    except ValueError as exc:
        return f"ValueError: {exc}"


@settings(max_examples=2000, deadline=None)
@given(_FORM_TEXT)
def test_form_pairs_is_parse_qsl(text: str) -> None:
    assert _ours(text) == _standard(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Body=Hi%2C+my+order+%2358213&From=%2B14155550123&NumMedia=0",
        "a=&b=1",
        "a=1&",
        "&a=1",
        "novalue",
        "x=%E2%82%AC+%ZZ+%e9",
        "a=1=2",
        "&".join(["a=1"] * MAX_FORM_FIELDS),
        "&".join(["a=1"] * (MAX_FORM_FIELDS + 1)),
    ],
)
def test_form_pairs_examples(text: str) -> None:
    assert _ours(text) == _standard(text)
