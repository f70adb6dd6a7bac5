"""SendGrid Inbound Parse: basic authentication, the default mode (fields decoded with their declared charsets,
attachment-info) and the raw mode (`email`), DKIM/SPF alignment, and every rejection naming its field."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors._multipart import parse_form_data
from connectors.email.sendgrid import connector, dkim_verdicts
from connectors.registry import get_connector
from schemas import Attachment, CustomerParty, EmailDetails, Endpoint, Identifier, InteractionEvent

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sendgrid"
URL = "https://unify.example.com/v1/webhooks/sendgrid"
MULTIPART = "multipart/form-data; boundary=xYzZY"
SETTINGS = ConnectorSettings(basic_auth="sendgrid:Parse-7c1e")
RECEIVED = datetime(2024, 6, 14, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def rebuild(name: str, **changes: bytes | None) -> bytes:
    """The fixture's form with fields replaced (None removes one); files keep their filename and type."""
    out = b""
    parts = {p.name: p for p in parse_form_data(MULTIPART, fixture(name))}
    for field, value in changes.items():
        parts.pop(field, None)
        if value is not None:
            parts[field] = parse_form_data(MULTIPART, _part(field, value) + b"--xYzZY--")[0]
    for part in parts.values():
        out += _part(part.name, part.value, part.filename, part.content_type)
    return out + b"--xYzZY--\r\n"


def _part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--xYzZY\r\nContent-Disposition: {disposition}\r\n"
    return (head + (f"Content-Type: {content_type}\r\n" if content_type else "") + "\r\n").encode() + value + b"\r\n"


def request(body: bytes, content_type: str = MULTIPART, **headers: str) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=URL,
        headers={"content-type": content_type, "user-agent": "Sendlib/1.0 mx.sendgrid.net", **headers},
        body=body,
        received_at=RECEIVED,
    )


def parse(body: bytes) -> InteractionEvent:
    [event] = connector.parse(request(body), SETTINGS).events
    assert msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent) == event
    return event


def test_registered() -> None:
    assert get_connector("sendgrid") is connector


def test_basic_auth() -> None:
    good = "Basic " + base64.b64encode(b"sendgrid:Parse-7c1e").decode()
    connector.verify(request(fixture("default.txt"), authorization=good), SETTINGS)
    with pytest.raises(SignatureError) as refused:
        connector.verify(request(fixture("default.txt"), authorization=good.replace("c", "d")), SETTINGS)
    assert refused.value.field == "authorization"
    with pytest.raises(SignatureError):
        connector.verify(request(fixture("default.txt")), SETTINGS)


def test_default_mode_is_normalized_with_declared_charsets() -> None:
    event = parse(fixture("default.txt"))
    assert event == InteractionEvent(
        source="sendgrid",
        external_id="CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.example.org",
        channel="email",
        direction="inbound",
        occurred_at=datetime(2024, 6, 12, 20, 53, 5, tzinfo=UTC),
        status="received",
        customer=CustomerParty(
            identifiers=[Identifier(kind="email", value="juergen.weiss@example.org", verification="signed")],
            display_name="Jürgen Weiß",
        ),
        endpoint=Endpoint(kind="email", value="support@parse.acme.test"),
        thread_key="CAN_P_JMk2=order-8120@mail.example.org",
        subject="Re: Rücksendung Bestellung 8120",
        text=event.text,
        snippet="Hallo,\n\ndas Paket für die Rücksendung ist unterwegs. Größe: 40×30 cm.",
        attachments=[Attachment(filename="Ruecksendeschein-8120.pdf", content_type="application/pdf", size_bytes=78)],
        attributes={"sender_ip": "198.51.100.23", "spam_score": "0.1"},
        details=EmailDetails(
            message_id="CAN_P_JMvV7ZpAQhOnDienypLrJmuhN=LQWweu4yScw4jQyXY2w@mail.example.org",
            in_reply_to="ticket-8120.reply@acme.test",
            references=["CAN_P_JMk2=order-8120@mail.example.org", "ticket-8120.reply@acme.test"],
            cc=["petra.weiss@example.org"],
            spf="pass",
            dkim="pass",
        ),
    )
    assert event.text is not None and "Am 12.06.2024 um 18:10 schrieb" in event.text  # ISO-8859-1 text field


def test_html_field_in_its_own_charset() -> None:
    event = parse(rebuild("default.txt", text=None))
    assert event.text == "Hallo,\n\ndas Paket für die Rücksendung ist unterwegs – Größe: 40×30 cm."  # windows-1252


def test_wrong_charset_declaration_falls_back() -> None:
    charsets = json.dumps({"text": "utf-8", "subject": "us-ascii", "from": "x-klingon"}).encode()
    event = parse(
        rebuild(
            "default.txt",
            charsets=charsets,
            subject="Re: Rücksendung".encode(),
            text="Größe".encode("latin-1"),
            **{"from": "Jürgen Weiß <juergen.weiss@example.org>".encode()},
        )
    )
    assert (event.subject, event.text, event.customer.display_name) == ("Re: Rücksendung", "Größe", "Jürgen Weiß")
    assert parse(rebuild("default.txt", charsets=None)).subject == "Re: Rücksendung Bestellung 8120"


def test_raw_mode() -> None:
    event = parse(fixture("raw.txt"))
    assert (event.external_id, event.subject) == (
        "20240613150621.9a8b7c6d@mailer.example.net",
        "Question about my subscription",
    )
    assert event.text == "How do I change the billing address of my subscription?"
    assert event.attachments == [Attachment(filename="address.csv", content_type="text/csv", size_bytes=34)]
    # DKIM passed for the ESP's domain, not the From domain, and SPF soft-failed: the address is only asserted.
    assert event.customer.identifiers == [Identifier(kind="email", value="news@example.org")]
    assert isinstance(event.details, EmailDetails) and (event.details.spf, event.details.dkim) == ("softfail", "pass")


def test_dkim_field() -> None:
    assert dkim_verdicts("{@sendgrid.com : pass}") == [("pass", "sendgrid.com")]
    assert dkim_verdicts("{@a.example : fail, @b.example : pass}") == [("fail", "a.example"), ("pass", "b.example")]
    assert dkim_verdicts("none") == dkim_verdicts(None) == []


def test_spf_pass_counts_for_the_envelope_domain_only() -> None:
    envelope = json.dumps({"to": ["support@parse.acme.test"], "from": "bounces@esp.example"}).encode()
    event = parse(rebuild("default.txt", dkim=b"{@esp.example : pass}", envelope=envelope))
    assert event.customer.identifiers[0].verification == "unverified"
    event = parse(rebuild("default.txt", dkim=b"{@example.org : fail}"))  # SPF pass for juergen.weiss@example.org
    assert event.customer.identifiers[0].verification == "signed"


def test_auto_reply_with_null_envelope_sender() -> None:
    envelope = json.dumps({"to": ["support@parse.acme.test"], "from": ""}).encode()
    event = parse(rebuild("default.txt", envelope=envelope))
    assert isinstance(event.details, EmailDetails) and event.details.auto_submitted
    assert event.customer.identifiers == []


def test_endpoint_falls_back_to_the_to_field() -> None:
    assert parse(rebuild("default.txt", envelope=None)).endpoint == Endpoint(
        kind="email", value="support@parse.acme.test"
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"envelope": b"{to: nowhere"}, "envelope"),
        ({"envelope": b'{"to": "support@parse.acme.test"}'}, "envelope"),
        ({"charsets": b"[1, 2]"}, "charsets"),
        ({"attachment-info": b'{"attachment1": "x.pdf"}'}, "attachment-info"),
        ({"headers": None}, "headers"),
        ({"from": b"nobody", "headers": b"Subject: no sender\n"}, "from"),
    ],
)
def test_rejections_name_the_field(changes: dict[str, bytes | None], field: str) -> None:
    with pytest.raises(PayloadError) as rejected:
        connector.parse(request(rebuild("default.txt", **changes)), SETTINGS)
    assert rejected.value.field == field


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"headers=x", "application/x-www-form-urlencoded", "content-type"),
        (fixture("default.txt"), "multipart/form-data", "content-type"),
        (b"not multipart at all", MULTIPART, "$"),
    ],
)
def test_body_rejections(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(PayloadError) as rejected:
        connector.parse(request(body, content_type), SETTINGS)
    assert rejected.value.field == field
