"""Channel connectors: pure functions from a platform's webhook bytes to `schemas.InteractionEvent`s.

One module per platform, grouped by channel (`phone/`, `sms/`, `email/`, `chat/`); no database and no web
framework in here. The registry of route names lives in `connectors.registry`."""
