"""Builders for native interaction events as a client would send them (plain JSON-able dicts)."""

from __future__ import annotations

from typing import Any


def native_event(external_id: str = "call-1001", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source": "native",
        "external_id": external_id,
        "channel": "voice",
        "direction": "inbound",
        "occurred_at": "2026-11-02T09:30:00-05:00",
        "answered_at": "2026-11-02T09:31:35-05:00",
        "ended_at": "2026-11-02T09:40:00-05:00",
        "status": "completed",
        "customer": {
            "identifiers": [{"kind": "phone", "value": "+1 415-555-0100", "verification": "carrier_attested"}],
            "display_name": "Ada Lovelace",
        },
        "endpoint": {"kind": "phone", "value": "+18005550199"},
        "agent": "agent.kim",
        "queue": "billing",
        "reason": "billing",
        "queue_wait_seconds": 95,
        "hold_seconds": 40,
        "talk_seconds": 465,
        "details": {"type": "voice", "stir_verstat": "TN-Validation-Passed-A", "number_of_holds": 1},
    }
    event.update(overrides)
    return event
