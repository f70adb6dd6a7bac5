"""cdr-csv: Asterisk Master.csv and FreeSWITCH mod_cdr_csv files, normalized field by field."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors.phone.cdr_csv import connector
from schemas import CustomerParty, Identifier, InteractionEvent, VoiceDetails
from schemas._interaction import Endpoint

FIXTURES = Path(__file__).parents[1] / "fixtures" / "cdr-csv"
ASTERISK = (FIXTURES / "asterisk-Master.csv").read_bytes()
FREESWITCH = (FIXTURES / "freeswitch-Master.csv").read_bytes()
NEW_YORK = ZoneInfo("America/New_York")


def _request(body: bytes, query: str = "", authorization: str | None = None) -> WebhookRequest:
    headers = {"content-type": "text/csv"}
    if authorization is not None:
        headers["authorization"] = authorization
    pairs = tuple(tuple(p.split("=", 1)) for p in query.split("&") if p)
    url = "https://unify.example.com/v1/webhooks/cdr-csv" + (f"?{query}" if query else "")
    return WebhookRequest("POST", url, headers, body, datetime(2026, 11, 4, tzinfo=UTC), pairs)  # type: ignore[arg-type]


def _events(body: bytes, query: str = "", timezone: str = "UTC", business_numbers: str = "") -> list[InteractionEvent]:
    settings = ConnectorSettings(timezone=timezone, options={"business_numbers": business_numbers})
    return connector.parse(_request(body, query), settings).events


def test_asterisk_master_csv() -> None:
    events = _events(ASTERISK, "tz=America/New_York")
    summary = [(e.external_id, e.direction, e.status) for e in events]
    assert summary == [
        ("1762161302.18", "inbound", "completed"),
        ("1762161640.20", "inbound", "no_answer"),
        ("1762162200.22", "outbound", "completed"),
        ("1762162800.24", "internal", "busy"),
        ("1762163400.26", "inbound", "no_answer"),
    ]
    answered, missed, outbound, internal, anonymous = events
    assert (answered.source, answered.channel, answered.revision) == ("cdr-csv", "voice", 0)
    assert answered.occurred_at == datetime(2026, 11, 3, 9, 15, 2, tzinfo=NEW_YORK)
    assert answered.answered_at == datetime(2026, 11, 3, 9, 15, 9, tzinfo=NEW_YORK)
    assert answered.ended_at == datetime(2026, 11, 3, 9, 18, 31, tzinfo=NEW_YORK)
    assert answered.talk_seconds == 202
    assert answered.customer == CustomerParty(
        identifiers=[Identifier(kind="phone", value="+14155550123")], display_name="Jane Roe"
    )
    assert answered.endpoint == Endpoint(kind="phone", value="8005550100")
    assert answered.details == VoiceDetails(disconnect_reason="ANSWERED")
    assert answered.attributes == {
        "channel": "SIP/trunk-00000012",
        "dstchannel": "SIP/1001-00000013",
        "lastapp": "Dial",
    }
    assert (missed.answered_at, missed.talk_seconds) == (None, None)
    assert missed.customer.display_name == "SMITH JOHN"
    assert outbound.customer == CustomerParty(identifiers=[Identifier(kind="phone", value="14155550199")])
    assert outbound.endpoint == Endpoint(kind="phone", value="1001")
    assert outbound.attributes["userfield"] == "order-5521"
    assert internal.customer == CustomerParty()
    assert anonymous.customer == CustomerParty()


def test_freeswitch_example_template() -> None:
    events = _events(FREESWITCH, "tz=America/New_York")
    summary = [(e.external_id[:8], e.direction, e.status) for e in events]
    assert summary == [
        ("a5c9f6c0", "inbound", "completed"),
        ("e29ff0ae", "inbound", "abandoned"),  # ORIGINATOR_CANCEL: the caller hung up first
        ("e2fe712e", "outbound", "busy"),
        ("e34619ac", "internal", "completed"),
    ]
    answered = events[0]
    assert answered.external_id == "a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d"
    assert answered.occurred_at == datetime(2026, 11, 3, 10, 0, 1, tzinfo=NEW_YORK)
    assert answered.answered_at == datetime(2026, 11, 3, 10, 0, 6, tzinfo=NEW_YORK)
    assert answered.ended_at == datetime(2026, 11, 3, 10, 4, 10, tzinfo=NEW_YORK)
    assert answered.talk_seconds == 244
    assert answered.customer == CustomerParty(
        identifiers=[Identifier(kind="phone", value="+14155550123")], display_name="Jane Roe"
    )
    assert answered.endpoint == Endpoint(kind="phone", value="+18005550100")
    assert answered.attributes == {
        "bleg_uuid": "b1d2e3f4-e752-11e3-8bfc-65b6c3cdac7d",
        "read_codec": "PCMU",
        "write_codec": "PCMU",
    }
    assert events[1].customer.display_name is None  # caller_id_name is just the number


def test_time_zone_parameter_overrides_the_setting() -> None:
    utc = _events(ASTERISK)[0].occurred_at
    assert utc == datetime(2026, 11, 3, 9, 15, 2, tzinfo=UTC)
    assert _events(ASTERISK, timezone="Europe/Berlin")[0].occurred_at == utc - timedelta(hours=1)
    assert _events(ASTERISK, "tz=Asia/Tokyo", timezone="Europe/Berlin")[0].occurred_at == utc - timedelta(hours=9)


def test_format_parameter_and_detection_agree() -> None:
    assert _events(ASTERISK, "format=asterisk") == _events(ASTERISK)
    assert _events(FREESWITCH, "format=FreeSWITCH") == _events(FREESWITCH)
    with pytest.raises(PayloadError) as caught:
        _events(FREESWITCH, "format=asterisk")
    assert caught.value.field == "row 1"


def test_without_unique_ids_rows_get_a_stable_hash() -> None:
    rows = b"\n".join(line.rsplit(b",", 2)[0] for line in ASTERISK.splitlines())  # 16 columns
    first, again = _events(rows), _events(rows)
    assert [e.external_id for e in first] == [e.external_id for e in again]
    assert len({e.external_id for e in first}) == 5
    assert all(e.external_id.startswith("asterisk-sha256-") for e in first)


def test_asterisk_new_cdr_columns_and_a_header_row() -> None:
    header = b'"accountcode","src","dst","dcontext","clid","channel","dstchannel","lastapp","lastdata","start",'
    header += b'"answer","end","duration","billsec","disposition","amaflags","uniqueid","userfield","peeraccount",'
    header += b'"linkedid","sequence"\n'
    row = ASTERISK.splitlines()[0] + b',"","1762161302.17","41"\n'
    [event] = _events(header + row)
    assert (event.external_id, event.thread_key) == ("1762161302.18", "1762161302.17")


def test_freeswitch_built_in_template_has_thirteen_columns() -> None:
    row = b'"Jane Roe","+14155550123","+18005550100","public","2026-11-03 10:00:01","","2026-11-03 10:00:31",'
    row += b'"30","0","NO_ANSWER","0c1d2e3f-e752-11e3-8bfb-65b6c3cdac7d","", "support"\n'
    [event] = _events(row)
    assert (event.status, event.external_id) == ("no_answer", "0c1d2e3f-e752-11e3-8bfb-65b6c3cdac7d")
    assert event.attributes == {"accountcode": "support"}


@pytest.mark.parametrize(
    ("cause", "status"),
    [
        ("NORMAL_CLEARING", "no_answer"),
        ("NO_USER_RESPONSE", "no_answer"),
        ("USER_BUSY", "busy"),
        ("CALL_REJECTED", "busy"),
        ("LOSE_RACE", "canceled"),
        ("UNALLOCATED_NUMBER", "failed"),
        ("NORMAL_TEMPORARY_FAILURE", "failed"),
    ],
)
def test_freeswitch_unanswered_hangup_causes(cause: str, status: str) -> None:
    row = FREESWITCH.splitlines()[1].replace(b"ORIGINATOR_CANCEL", cause.encode())
    assert _events(row)[0].status == status


def test_originator_cancel_on_an_outbound_call_is_canceled() -> None:
    row = FREESWITCH.splitlines()[2].replace(b"USER_BUSY", b"ORIGINATOR_CANCEL")
    assert _events(row)[0].status == "canceled"


def test_business_numbers_decide_the_direction() -> None:
    row = b'"","+14155550123","+1 (800) 555-0100","from-internal","","SIP/x-1","SIP/1001-2","Dial","","2026-11-03 '
    row += b'09:15:02","","2026-11-03 09:15:09",7,0,"FAILED","DOCUMENTATION"\n'
    [default] = _events(row)
    assert default.direction == "inbound"  # no hint: a caller that is no extension
    [event] = _events(row, business_numbers="18005550100, 8005550177")
    assert (event.direction, event.status) == ("inbound", "failed")
    swapped = row.replace(b'"+14155550123","+1 (800) 555-0100"', b'"08005550177","+14155550123"')
    [event] = _events(swapped, business_numbers="18005550100, 8005550177")
    assert event.direction == "outbound"
    assert event.customer.identifiers == [Identifier(kind="phone", value="+14155550123")]


def test_latin1_file_and_crlf_lines() -> None:
    body = ASTERISK.replace(b"Jane Roe", "Jörg Müller".encode("latin-1")).replace(b"\n", b"\r\n")
    assert _events(body)[0].customer.display_name == "Jörg Müller"


@pytest.mark.parametrize(
    ("body", "query", "field"),
    [
        (ASTERISK.replace(b"2026-11-03 09:20:40", b"03/11/2026 09:20"), "", "row 2, column start"),
        (ASTERISK.replace(b'"2026-11-03 09:20:40"', b'""'), "", "row 2, column start"),
        (ASTERISK.replace(b'"2026-11-03 09:15:09"', b'"2026-11-03 09:00:00"'), "", "row 1, column answer"),
        (ASTERISK.replace(b'"2026-11-03 09:21:10"', b'"2026-11-03 09:00:00"'), "", "row 2, column end"),
        (ASTERISK.replace(b",209,202,", b",209,lots,"), "", "row 1, column billsec"),
        (ASTERISK.replace(b'"BUSY"', b'"MAYBE"'), "", "row 4, column disposition"),
        (ASTERISK.replace(b',"BILLING","1762162200.22","order-5521"', b""), "", "row 3"),
        (ASTERISK.replace(b"1762161302.18", b"1" * 600), "", "row 1, column uniqueid"),
        (
            FREESWITCH.replace(b"2026-11-03 10:20:00", b"2026-11-03T10:20"),
            "format=freeswitch",
            "row 3, column start_stamp",
        ),
        (b"just,some,text\n", "", "row 1"),
        (b"\n\n", "", "$"),
        (b"", "", "$"),
        (b'"a","b\n', "", "row 1"),
        (ASTERISK, "tz=Mars/Olympus_Mons", "tz"),
        (ASTERISK, "format=excel", "format"),
    ],
)
def test_payload_errors_name_the_row_and_column(body: bytes, query: str, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        _events(body, query)
    assert caught.value.field == field


def test_bad_configured_time_zone_is_named() -> None:
    with pytest.raises(PayloadError) as caught:
        _events(ASTERISK, timezone="Nowhere/Town")
    assert caught.value.field == "timezone"


def test_basic_auth() -> None:
    good = "Basic " + base64.b64encode(b"pbx:upload-key").decode()
    connector.verify(_request(ASTERISK, authorization=good), ConnectorSettings(basic_auth="pbx:upload-key"))
    with pytest.raises(SignatureError):
        connector.verify(_request(ASTERISK), ConnectorSettings(basic_auth="pbx:upload-key"))
    with pytest.raises(SignatureError):
        connector.verify(_request(ASTERISK, authorization=good), ConnectorSettings(basic_auth="pbx:other"))
