"""Vonage SMS connector: signature vectors (md5hash and HMAC), freshness, the three delivery methods, concatenated
messages, and every rejection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from connectors._base import ConnectorSettings, Fragment, PayloadError, SignatureError, WebhookRequest
from connectors.registry import get_connector
from connectors.sms.vonage_sms import connector, signature_method, vonage_signature
from schemas import Endpoint, Identifier, InteractionEvent, SmsDetails

FIXTURES = Path(__file__).parent.parent / "fixtures" / "vonage-sms"
URL = "https://unify.example.com/v1/webhooks/vonage-sms"
SECRET = "Vy2Xn5bQk0zS4tW8hJ1mC7pR3dL6fG9aE4uT"
SETTINGS = ConnectorSettings(secret=SECRET)
FORM = "application/x-www-form-urlencoded"
# The signed `timestamp` of inbound-signed.txt.
SIGNED_AT = datetime(2024, 3, 15, 14, 24, 0, tzinfo=UTC)

# Vonage's documented md5hash example.
DOC_PARAMS = {
    "message-timestamp": "2013-11-21 15:27:30",
    "messageId": "020000001B0FE827",
    "msisdn": "14843472194",
    "text": "Test again",
    "timestamp": "1385047698",
    "to": "13239877404",
    "type": "text",
}
DOC_SECRET = "my_secret_key_for_testing"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def form_params(name: str) -> dict[str, str]:
    return dict(parse_qsl(fixture(name).decode(), keep_blank_values=True))


def post(body: bytes, content_type: str = FORM, *, at: datetime = SIGNED_AT) -> WebhookRequest:
    headers = {"content-type": content_type, "user-agent": "Nexmo/MessagingHUB/v1.0"}
    return WebhookRequest(method="POST", url=URL, headers=headers, body=body, received_at=at)


def get(params: list[tuple[str, str]], *, at: datetime = SIGNED_AT) -> WebhookRequest:
    query = urlencode(params)
    return WebhookRequest(method="GET", url=f"{URL}?{query}", headers={}, body=b"", received_at=at, query=params)


def resigned(params: dict[str, str], method: str = "md5hash", **changes: str | None) -> dict[str, str]:
    out = {k: v for k, v in params.items() if k != "sig"}
    for key, value in changes.items():
        key = key.replace("_", "-") if key.startswith(("message_", "concat_", "api_")) else key
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    out["sig"] = vonage_signature(out, SECRET, method)
    return out


def parse_event(request: WebhookRequest) -> InteractionEvent:
    parsed = connector.parse(request, SETTINGS)
    assert parsed.fragments == [] and parsed.replay_token is None
    [event] = parsed.events
    return event


def test_registered_under_its_route_name() -> None:
    assert get_connector("vonage-sms") is connector
    assert connector.name == "vonage-sms" and connector.channel == "sms"
    assert connector.reply.status == 200


# --- signature vectors -----------------------------------------------------------------------------------------


def test_documented_md5hash_vector() -> None:
    assert vonage_signature(DOC_PARAMS, DOC_SECRET) == "d2e7b1dc968737c5998ad624e02f90b7"
    assert vonage_signature(DOC_PARAMS, DOC_SECRET, "md5hash") == "d2e7b1dc968737c5998ad624e02f90b7"
    # `sig` itself is never part of what is signed.
    assert vonage_signature(DOC_PARAMS | {"sig": "whatever"}, DOC_SECRET) == "d2e7b1dc968737c5998ad624e02f90b7"


def test_sdk_vectors() -> None:
    """The vectors of Vonage's own client library tests."""
    assert vonage_signature({"a": "1", "b": "2", "timestamp": "1461605396"}, "secret") == (
        "6af838ef94998832dbfc29020b564830"
    )
    params = {"param1": "value1", "param2": "value2", "timestamp": "1234567890"}
    assert vonage_signature(params, "signature_secret", "sha256") == (
        "280c4320703dbc98bfa22db676655ed2acfbfe8792b062ff7622e67f1183c287"
    )
    assert vonage_signature(params, "signature_secret", "md5") == "724c2bf6ca423c36e20631b11d1c5753"
    special = {"param1": "value&1", "param2": "value=2", "timestamp": "1234567890"}
    assert vonage_signature(special, "signature_secret", "md5") == "2bbf0abafb2c55e5af6231513896a2ac"


def test_ampersands_and_equals_in_values_are_signed_as_underscores() -> None:
    assert vonage_signature({"text": "a&b=c"}, "s") == vonage_signature({"text": "a_b_c"}, "s")
    assert vonage_signature({"text": "a&b=c"}, "s", "sha1") == vonage_signature({"text": "a_b_c"}, "s", "sha1")


@pytest.mark.parametrize(
    ("setting", "method"),
    [
        ("md5hash", "md5hash"),
        ("MD5 hash", "md5hash"),
        ("md5", "md5"),
        ("MD5 HMAC", "md5"),
        ("sha1", "sha1"),
        ("SHA-256 HMAC", "sha256"),
        ("sha256", "sha256"),
        ("hmac-sha512", "sha512"),
    ],
)
def test_signature_method_setting(setting: str, method: str) -> None:
    assert signature_method(setting) == method


def test_unknown_signature_method_is_refused() -> None:
    with pytest.raises(SignatureError) as error:
        signature_method("crc32")
    assert error.value.field == "signature_method"


# --- verify ----------------------------------------------------------------------------------------------------


def test_verify_accepts_a_signed_form() -> None:
    connector.verify(post(fixture("inbound-signed.txt")), SETTINGS)
    connector.verify(post(fixture("inbound-signed.txt"), at=SIGNED_AT + timedelta(seconds=299)), SETTINGS)


def test_verify_accepts_signed_json_with_hmac_sha256_in_either_case() -> None:
    settings = ConnectorSettings(secret=SECRET, options={"signature_method": "sha256"})
    body = fixture("inbound-signed-sha256.json")
    connector.verify(post(body, "application/json"), settings)
    upper = json.loads(body)
    upper["sig"] = upper["sig"].upper()
    connector.verify(post(json.dumps(upper).encode(), "application/json"), settings)
    with pytest.raises(SignatureError):  # the same request checked with the default method
        connector.verify(post(body, "application/json"), SETTINGS)


def test_verify_accepts_signed_query_parameters() -> None:
    params = form_params("inbound-unicode-query.txt")
    connector.verify(get(list(params.items()), at=datetime(2024, 3, 15, 14, 31, 7, tzinfo=UTC)), SETTINGS)


@pytest.mark.parametrize("method", ["md5", "sha1", "sha256", "sha512"])
def test_verify_each_hmac_method(method: str) -> None:
    settings = ConnectorSettings(secret=SECRET, options={"signature_method": method})
    body = urlencode(resigned(form_params("inbound-signed.txt"), method)).encode()
    connector.verify(post(body), settings)
    with pytest.raises(SignatureError):
        connector.verify(post(body), ConnectorSettings(secret=SECRET + "x", options={"signature_method": method}))


def test_verify_rejects_a_tampered_message() -> None:
    params = form_params("inbound-signed.txt") | {"text": "Cancel everything"}
    with pytest.raises(SignatureError) as error:
        connector.verify(post(urlencode(params).encode()), SETTINGS)
    assert error.value.field == "sig"


def test_verify_rejects_a_missing_sig_or_secret() -> None:
    params = form_params("inbound-signed.txt")
    del params["sig"]
    with pytest.raises(SignatureError) as error:
        connector.verify(post(urlencode(params).encode()), SETTINGS)
    assert error.value.field == "sig"
    with pytest.raises(SignatureError, match="signature secret"):
        connector.verify(post(fixture("inbound-signed.txt")), ConnectorSettings())


def test_freshness_is_checked_on_the_signed_timestamp() -> None:
    body = fixture("inbound-signed.txt")
    for skew in (timedelta(seconds=301), timedelta(seconds=-301), timedelta(days=3650)):
        with pytest.raises(SignatureError) as error:
            connector.verify(post(body, at=SIGNED_AT + skew), SETTINGS)
        assert error.value.field == "timestamp"
    connector.verify(
        post(body, at=SIGNED_AT + timedelta(hours=1)), ConnectorSettings(secret=SECRET, max_skew_seconds=7200)
    )


def test_the_documented_vector_is_stale_today() -> None:
    params = DOC_PARAMS | {"sig": "d2e7b1dc968737c5998ad624e02f90b7"}
    settings = ConnectorSettings(secret=DOC_SECRET)
    connector.verify(post(urlencode(params).encode(), at=datetime(2013, 11, 21, 15, 28, tzinfo=UTC)), settings)
    with pytest.raises(SignatureError, match="stale"):
        connector.verify(post(urlencode(params).encode(), at=datetime.now(UTC)), settings)


def test_verify_requires_a_valid_signed_timestamp() -> None:
    for stamp in (None, "", "yesterday"):
        params = resigned(form_params("inbound-signed.txt"), timestamp=stamp)
        with pytest.raises(SignatureError) as error:
            connector.verify(post(urlencode(params).encode()), SETTINGS)
        assert error.value.field == "timestamp"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"{not json", "application/json"), (b"[1, 2]", "application/json"), (b"\xff", FORM), (b"<xml/>", "text/xml")],
)
def test_verify_fails_closed_on_an_unreadable_body(body: bytes, content_type: str) -> None:
    with pytest.raises(SignatureError):
        connector.verify(post(body, content_type), SETTINGS)


def test_verify_is_skipped_when_turned_off() -> None:
    connector.verify(post(b"msisdn=1"), ConnectorSettings(verify=False))


# --- parse -----------------------------------------------------------------------------------------------------


def test_inbound_sms_from_a_form() -> None:
    event = parse_event(post(fixture("inbound-signed.txt")))
    assert event.source == "vonage-sms"
    assert event.external_id == "0A0000001F3C2B7E"
    assert event.channel == "sms" and event.direction == "inbound" and event.status == "received"
    assert event.revision == 0
    assert event.occurred_at == datetime(2024, 3, 15, 14, 24, 0, tzinfo=UTC)
    assert event.customer.identifiers == [Identifier(kind="phone", value="+447700900123", verification="unverified")]
    assert event.endpoint == Endpoint(kind="phone", value="+447700900000")
    assert event.text == "Hello, is my appointment on Friday still confirmed?"
    assert event.snippet == event.text
    assert event.details == SmsDetails(transport="sms", keyword="HELLO,")
    assert event.attributes == {"api_key": "a1b2c3d4", "type": "text"}


def test_inbound_sms_from_json_is_the_same_event() -> None:
    from_json = parse_event(post(fixture("inbound-signed-sha256.json"), "application/json; charset=utf-8"))
    assert from_json == parse_event(post(fixture("inbound-signed.txt")))


def test_inbound_unicode_sms_from_the_query() -> None:
    event = parse_event(get(parse_qsl(fixture("inbound-unicode-query.txt").decode())))
    assert event.external_id == "0B000000A7D41E92"
    assert event.text == "Bonjour, le colis n°4821 est arrivé abîmé 😞"
    assert event.customer.identifiers[0].value == "+33612345678"
    assert event.attributes["type"] == "unicode"


def test_binary_messages_have_no_text() -> None:
    params = resigned(form_params("inbound-signed.txt"), text=None, keyword=None, type="binary")
    params |= {"data": "0011223344556677", "udh": "050003CC0201"}
    event = parse_event(post(urlencode(params).encode()))
    assert event.text is None and event.snippet is None
    assert event.attributes["data"] == "0011223344556677" and event.attributes["udh"] == "050003CC0201"


def test_alphanumeric_senders_are_kept_as_given() -> None:
    params = resigned(form_params("inbound-signed.txt"), msisdn="ACME")
    assert parse_event(post(urlencode(params).encode())).customer.identifiers[0].value == "ACME"


def test_unix_timestamp_stands_in_for_a_missing_message_timestamp() -> None:
    params = resigned(form_params("inbound-signed.txt"), message_timestamp=None)
    assert parse_event(post(urlencode(params).encode())).occurred_at == SIGNED_AT


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"msisdn": None}, "msisdn"),
        ({"msisdn": ""}, "msisdn"),
        ({"msisdn": "1" * 65}, "msisdn"),
        ({"to": None}, "to"),
        ({"messageId": None}, "messageId"),
        ({"messageId": "0" * 513}, "messageId"),
        ({"text": None}, "text"),
        ({"message_timestamp": "15/03/2024 14:24"}, "message-timestamp"),
        ({"message_timestamp": None, "timestamp": None}, "message-timestamp"),
        ({"concat": "true", "concat_ref": None, "concat_part": "1", "concat_total": "2"}, "concat-ref"),
        ({"concat": "true", "concat_ref": "7", "concat_part": "1", "concat_total": "x"}, "concat-total"),
        ({"concat": "true", "concat_ref": "7", "concat_part": "1", "concat_total": "0"}, "concat-total"),
        ({"concat": "true", "concat_ref": "7", "concat_part": "1", "concat_total": "256"}, "concat-total"),
        ({"concat": "true", "concat_ref": "7", "concat_part": "3", "concat_total": "2"}, "concat-part"),
        ({"concat": "true", "concat_ref": "7", "concat_part": "0", "concat_total": "2"}, "concat-part"),
        ({"concat": "true", "concat_ref": "7", "concat_total": "2"}, "concat-part"),
        ({"text": "nul\x00"}, "text"),
    ],
)
def test_bad_messages_name_the_field(changes: dict[str, str | None], field: str) -> None:
    params = resigned(form_params("inbound-signed.txt"), **changes)
    with pytest.raises(PayloadError) as error:
        connector.parse(post(urlencode(params).encode()), SETTINGS)
    assert error.value.field == field
    as_json = json.dumps({k: v for k, v in params.items()}).encode()
    with pytest.raises(PayloadError) as error:
        connector.parse(post(as_json, "application/json"), SETTINGS)
    assert error.value.field == f"$.{field}"


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"{not json", "application/json", "$"),
        (b"[]", "application/json", "$"),
        (b'{"msisdn": {"nested": 1}}', "application/json", "$"),
        (b"\xff\xfe", FORM, "$"),
        (b"<inbound/>", "text/xml", "content-type"),
        (b"", FORM, "msisdn"),
    ],
)
def test_bodies_vonage_never_sends(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(PayloadError) as error:
        connector.parse(post(body, content_type), SETTINGS)
    assert error.value.field == field


def test_json_scalars_are_read_as_vonage_strings() -> None:
    params = {k: v for k, v in form_params("inbound-signed.txt").items() if k != "sig"}
    body = json.dumps(params | {"concat": False, "nonce": None}).encode()
    assert parse_event(post(body, "application/json")).external_id == "0A0000001F3C2B7E"


# --- concatenated messages -------------------------------------------------------------------------------------


def parts() -> list[Fragment]:
    out: list[Fragment] = []
    for index in (3, 1, 2):
        parsed = connector.parse(post(fixture(f"inbound-concat-part{index}.txt")), SETTINGS)
        assert parsed.events == []
        [fragment] = parsed.fragments
        out.append(fragment)
    return out


def test_each_part_is_a_fragment_of_one_group() -> None:
    fragments = parts()
    assert {f.group for f in fragments} == {"+14155550147|+12015550100|108|3"}
    assert [(f.index, f.total) for f in fragments] == [(3, 3), (1, 3), (2, 3)]
    assert [f.event.external_id for f in fragments] == ["0C00000012AB34C3", "0C00000012AB34C1", "0C00000012AB34C2"]
    assert all(f.text == f.event.text for f in fragments)


def test_parts_are_joined_in_order_into_one_message() -> None:
    whole = connector.assemble(sorted(parts(), key=lambda f: f.index))
    assert whole.text == fixture("concat-full-text.txt").decode()
    assert whole.snippet == whole.text
    assert whole.external_id == "0C00000012AB34C1"  # part 1's id: the same whichever part arrives last
    assert whole.occurred_at == datetime(2024, 3, 15, 15, 2, 11, tzinfo=UTC)
    assert whole.customer.identifiers == [Identifier(kind="phone", value="+14155550147")]
    assert whole.endpoint == Endpoint(kind="phone", value="+12015550100")
    assert whole.details == SmsDetails(transport="sms", segments=3, keyword="HI,")
    assert whole.attributes["message_ids"] == "0C00000012AB34C1,0C00000012AB34C2,0C00000012AB34C3"
    assert whole.attributes["concat_ref"] == "108" and "concat_part" not in whole.attributes


def test_assembling_fragments_that_went_through_json_gives_the_same_message() -> None:
    import msgspec

    fragments = sorted(parts(), key=lambda f: f.index)
    stored = [
        Fragment(
            group=f.group,
            index=f.index,
            total=f.total,
            text=f.text,
            event=msgspec.convert(msgspec.to_builtins(f.event), InteractionEvent),
        )
        for f in fragments
    ]
    assert connector.assemble(stored) == connector.assemble(fragments)


def test_incomplete_parts_are_refused() -> None:
    fragments = sorted(parts(), key=lambda f: f.index)
    for broken in ([], fragments[:2], [fragments[0], fragments[2]], fragments[1:]):
        with pytest.raises(PayloadError):
            connector.assemble(broken)
