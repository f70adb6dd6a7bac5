"""Postmark inbound webhook: basic authentication, the normalized message (Postmark's MessageID as the key, the
header Message-ID for threading), SPF/DKIM from Postmark's own headers only, bounces, and every rejection."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.email.postmark import connector
from connectors.registry import get_connector
from schemas import Attachment, CustomerParty, EmailDetails, Endpoint, Identifier, InteractionEvent

FIXTURES = Path(__file__).parent.parent / "fixtures" / "postmark"
URL = "https://unify.example.com/v1/webhooks/postmark"
SETTINGS = ConnectorSettings(basic_auth="postmark:Xk82-inbound")
RECEIVED = datetime(2014, 8, 3, 12, tzinfo=UTC)


def payload(name: str = "inbound.json") -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def request(body: bytes, content_type: str = "application/json", **headers: str) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=URL,
        headers={"content-type": content_type, "user-agent": "Postmark", **headers},
        body=body,
        received_at=RECEIVED,
    )


def parse(data: dict[str, Any], settings: ConnectorSettings = SETTINGS) -> InteractionEvent:
    [event] = connector.parse(request(json.dumps(data).encode()), settings).events
    assert msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent) == event
    return event


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_registered() -> None:
    assert get_connector("postmark") is connector


def test_basic_auth() -> None:
    body = (FIXTURES / "inbound.json").read_bytes()
    connector.verify(request(body, authorization=basic("postmark:Xk82-inbound")), SETTINGS)
    for header in ({"authorization": basic("postmark:wrong")}, {"authorization": "Bearer x"}, {}):
        with pytest.raises(SignatureError) as refused:
            connector.verify(request(body, **header), SETTINGS)
        assert refused.value.field == "authorization"
    with pytest.raises(SignatureError, match="basic_auth"):
        connector.verify(request(body, authorization=basic("postmark:Xk82-inbound")), ConnectorSettings())


def test_inbound_message_is_normalized() -> None:
    event = parse(payload())
    assert event == InteractionEvent(
        source="postmark",
        external_id="73e6d360-66eb-11e1-8e72-a8206ea7d310",
        channel="email",
        direction="inbound",
        occurred_at=datetime(2014, 8, 1, 19, 45, 32, tzinfo=UTC),  # "-03:00": Postmark keeps the sender's format
        status="received",
        customer=CustomerParty(
            identifiers=[Identifier(kind="email", value="ana.souza@example.com.br", verification="signed")],
            display_name="Ana Souza",
        ),
        endpoint=Endpoint(kind="email", value="support@acme.test"),
        thread_key="CAFJ8vkW5t=pedido-7790@mail.gmail.com",
        subject="Re: Pedido 7790 – troca de cor",
        text=event.text,
        snippet="Sim, pode trocar para a cor grafite.\n\nObrigada,\nAna",
        attachments=[Attachment(filename="pedido-7790.txt", content_type="text/plain", size_bytes=37)],
        attributes={"mailbox_hash": "ticket-7790"},
        details=EmailDetails(
            message_id="CAFJ8vkZp1r2Qz9Nn8=troca-7790@mail.gmail.com",
            in_reply_to="20140801181022.7790.reply@acme.test",
            references=["CAFJ8vkW5t=pedido-7790@mail.gmail.com", "20140801181022.7790.reply@acme.test"],
            cc=["bruno.souza@example.com.br"],
            spf="pass",
            dkim="pass",
        ),
    )
    assert event.text is not None and "escreveu:" in event.text


def test_own_snippet_when_postmark_has_no_stripped_reply() -> None:
    data = payload() | {"StrippedTextReply": ""}
    assert parse(data).snippet == "Sim, pode trocar para a cor grafite.\n\nObrigada,\nAna"  # "Em … escreveu:" cut
    html_only = payload() | {"StrippedTextReply": "", "TextBody": ""}
    assert (
        parse(html_only).text
        == "Sim, pode trocar para a cor grafite.\n\nObrigada,\nAna\n\n> Podemos trocar a cor do pedido 7790?"
    )


def _headers(data: dict[str, Any], *pairs: tuple[str, str]) -> dict[str, Any]:
    kept = [h for h in data["Headers"] if h["Name"] not in {"Received-SPF", "X-Spam-Tests"}]
    return data | {"Headers": [{"Name": n, "Value": v} for n, v in pairs] + kept}


@pytest.mark.parametrize(
    ("pairs", "verification"),
    [
        ((("Received-SPF", "Pass (sender SPF authorized) envelope-from=ana.souza@example.com.br"),), "signed"),
        ((("Received-SPF", 'Pass (sender SPF authorized) envelope-from="bounce@esp.example"'),), "unverified"),
        ((("Received-SPF", "SoftFail (domain transitioning)"),), "unverified"),
        # Postmark prepends its own header; one the sender added comes later and is not believed.
        (
            (
                ("Received-SPF", "None (no SPF record) envelope-from=ana.souza@example.com.br"),
                ("Received-SPF", "Pass (forged) envelope-from=ana.souza@example.com.br"),
            ),
            "unverified",
        ),
        ((("X-Spam-Tests", "DKIM_SIGNED,DKIM_VALID,DKIM_VALID_AU"),), "signed"),
        ((("X-Spam-Tests", "DKIM_SIGNED,DKIM_VALID"),), "signed"),  # the fixture's d= is the From domain
        ((("X-Spam-Tests", "DKIM_SIGNED,DKIM_INVALID"),), "unverified"),
        ((), "unverified"),
    ],
)
def test_sender_trust_from_postmarks_headers(pairs: tuple[tuple[str, str], ...], verification: str) -> None:
    event = parse(_headers(payload(), *pairs))
    assert event.customer.identifiers[0].verification == verification


def test_dkim_valid_for_another_domain_is_not_the_author() -> None:
    data = _headers(payload(), ("X-Spam-Tests", "DKIM_SIGNED,DKIM_VALID"))
    for header in data["Headers"]:
        if header["Name"] == "DKIM-Signature":
            header["Value"] = header["Value"].replace("d=example.com.br", "d=esp.example")
    assert parse(data).customer.identifiers[0].verification == "unverified"


def test_trusted_authentication_results_when_configured() -> None:
    data = _headers(payload(), ("Authentication-Results", "inbound.acme.test; dkim=pass header.d=example.com.br"))
    settings = ConnectorSettings(basic_auth="p:w", options={"trusted_authserv_id": "inbound.acme.test"})
    assert parse(data, settings).customer.identifiers[0].verification == "signed"
    assert parse(data).customer.identifiers[0].verification == "unverified"


def test_bounce() -> None:
    event = parse(payload("inbound-bounce.json"))
    assert (event.status, event.customer) == ("bounced", CustomerParty())
    assert isinstance(event.details, EmailDetails) and event.details.bounce and event.details.auto_submitted
    assert event.attributes == {"from": "mailer-daemon@googlemail.com"}
    assert event.external_id == "0c1c4b2e-3f7a-4d0b-9d55-5b0c9f3e8a11"


def test_optional_fields_may_be_missing_or_null() -> None:
    minimal = {"MessageID": "b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "From": "x@example.org", "Headers": None}
    event = parse(
        minimal | {"Date": None, "ToFull": None, "To": "support@acme.test", "Attachments": [{"Content": "QUJD"}]}
    )
    assert event.occurred_at == RECEIVED  # no Date: the receive time
    assert event.thread_key is None and event.endpoint == Endpoint(kind="email", value="support@acme.test")
    assert event.attachments == [Attachment(size_bytes=3)]
    assert event.customer.identifiers == [Identifier(kind="email", value="x@example.org")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "$"),
        (b'{"MessageID": "\xff\xfe"}', "$"),  # not UTF-8
        (b"[]", "$"),
        (b"{}", "$.MessageID"),
        (json.dumps(payload() | {"MessageID": "  "}).encode(), "$.MessageID"),
        (json.dumps(payload() | {"MessageID": 42}).encode(), "$.MessageID"),
        (json.dumps(payload() | {"Headers": [{"Name": "X", "Value": 1}]}).encode(), "$.Headers[0].Value"),
        (json.dumps(payload() | {"FromFull": "ana"}).encode(), "$.FromFull"),
        (
            json.dumps(payload() | {"Attachments": [{"ContentLength": "big"}]}).encode(),
            "$.Attachments[0].ContentLength",
        ),
    ],
)
def test_rejections_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as rejected:
        connector.parse(request(body), SETTINGS)
    assert rejected.value.field == field


def test_wrong_media_type() -> None:
    with pytest.raises(PayloadError) as rejected:
        connector.parse(request(b"MessageID=1", "application/x-www-form-urlencoded"), SETTINGS)
    assert rejected.value.field == "content-type"
