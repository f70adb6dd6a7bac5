"""Twilio's published signature example."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from connectors._base import ConnectorSettings, SignatureError, WebhookRequest
from connectors._twilio import twilio_signature, verify_twilio

URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Caller", "+14158675309"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
]


def test_published_vector() -> None:
    assert twilio_signature("12345", URL, PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert twilio_signature("12345", URL.replace(".com/", ".com:443/"), PARAMS) == "kvajT1Ptam85bY51eRf/AJRuM3w="


def _request(url: str, signature: str) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=url,
        headers={"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
        body=urlencode(PARAMS).encode(),
        received_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("url", [URL, URL.replace(".com/", ".com:443/")])
@pytest.mark.parametrize("signature", ["RSOYDt4T1cUTdK1PDd93/VVr8B8=", "kvajT1Ptam85bY51eRf/AJRuM3w="])
def test_accepts_the_url_with_and_without_port(url: str, signature: str) -> None:
    verify_twilio(_request(url, signature), ConnectorSettings(secret="12345"))


def test_rejects_a_wrong_signature_and_a_missing_token() -> None:
    with pytest.raises(SignatureError):
        verify_twilio(_request(URL, "RSOYDt4T1cUTdK1PDd93/VVr8B9="), ConnectorSettings(secret="12345"))
    with pytest.raises(SignatureError, match="auth token"):
        verify_twilio(_request(URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="), ConnectorSettings())
