"""Route names → connectors. `POST /v1/webhooks/{name}` dispatches through here."""

from __future__ import annotations

import importlib

from connectors._base import Connector

# name → module holding a module-level `connector` object.
_MODULES: dict[str, str] = {
    "twilio-voice": "connectors.phone.twilio_voice",
    "amazon-connect": "connectors.phone.amazon_connect",
    "cdr-csv": "connectors.phone.cdr_csv",
    "twilio-sms": "connectors.sms.twilio_sms",
    "vonage-sms": "connectors.sms.vonage_sms",
    "email-mime": "connectors.email.mime",
    "mailgun": "connectors.email.mailgun",
    "postmark": "connectors.email.postmark",
    "sendgrid": "connectors.email.sendgrid",
    "chat": "connectors.chat.native",
    "intercom": "connectors.chat.intercom",
    "sunshine-conversations": "connectors.chat.sunshine",
    "chatwoot": "connectors.chat.chatwoot",
}
_loaded: dict[str, Connector] = {}


def connector_names() -> list[str]:
    return sorted(_MODULES)


def get_connector(name: str) -> Connector | None:
    """The connector registered under `name`, or None."""
    if name not in _MODULES:
        return None
    if name not in _loaded:
        module = importlib.import_module(_MODULES[name])
        _loaded[name] = module.connector
    return _loaded[name]
