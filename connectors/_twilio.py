"""Twilio's request signature, shared by the voice and messaging connectors.

Twilio signs each webhook with `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + every POST parameter
name and value, sorted by name)). The URL is the one configured on Twilio, so it is rebuilt from the public base URL.
Twilio's own validators accept the URL with and without an explicit standard port (`:443` / `:80`), so both are
tried."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from connectors._base import ConnectorSettings, SignatureError, WebhookRequest
from connectors._common import require_secret, same_secret


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    payload = url + "".join(name + value for name, value in sorted(params, key=lambda p: p[0]))
    digest = hmac.digest(auth_token.encode(), payload.encode(), hashlib.sha1)
    return base64.b64encode(digest).decode()


def _other_url_variant(url: str) -> str | None:
    """The URL with the explicit standard port added, or removed; None when it has another port."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if parts.port is None and default is not None:
        return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}"))
    if parts.port == default:
        netloc = parts.netloc.rsplit(":", 1)[0] if host else parts.netloc
        return urlunsplit(parts._replace(netloc=netloc))
    return None


def verify_twilio(request: WebhookRequest, settings: ConnectorSettings) -> None:
    token = require_secret(settings, "auth token")
    presented = request.header("x-twilio-signature")
    if not presented:
        raise SignatureError("the X-Twilio-Signature header is missing", field="x-twilio-signature")
    params = request.form() if request.method == "POST" else []
    if same_secret(twilio_signature(token, request.url, params), presented):
        return
    other = _other_url_variant(request.url)  # only when the URL as configured does not match
    if other is not None and same_secret(twilio_signature(token, other, params), presented):
        return
    raise SignatureError("the X-Twilio-Signature does not match this request", field="x-twilio-signature")
