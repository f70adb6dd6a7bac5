"""PBX call detail records: an Asterisk `Master.csv` or a FreeSWITCH `mod_cdr_csv` file, uploaded as `text/csv`.

Payload. One call record per line, no header row (a header line naming the columns is skipped), fields quoted with
`"`. Times are `YYYY-MM-DD HH:MM:SS` in the PBX's local time zone.

- Asterisk `cdr_csv` (`Master.csv`), 16 columns: accountcode, src, dst, dcontext, clid, channel, dstchannel,
  lastapp, lastdata, start, answer, end, duration, billsec, disposition (`ANSWERED`, `NO ANSWER`, `BUSY`, `FAILED`,
  `CONGESTION`), amaflags; then `uniqueid` (`loguniqueid=yes`), `userfield` (`loguserfield=yes`), and peeraccount,
  linkedid, sequence (`newcdrcolumns=yes`) — 16 to 21 columns.
- FreeSWITCH `mod_cdr_csv`, the vanilla `example` template (15 columns): caller_id_name, caller_id_number,
  destination_number, context, start_stamp, answer_stamp, end_stamp, duration, billsec, hangup_cause, uuid,
  bleg_uuid, accountcode, read_codec, write_codec. The built-in default (13 columns, no codecs) and the `snom` /
  `linksys` templates (more columns after these) read the same way.

The format is `?format=asterisk|freeswitch`, or detected from the first record: a timestamp in the fifth column is
FreeSWITCH (`start_stamp`), one in the tenth is Asterisk (`start`). The time zone is `?tz=Europe/Berlin`, else the
connector's `timezone` setting (UTC by default). The body is UTF-8, or Latin-1 when it is not valid UTF-8.

Signature. PBXs do not sign: the uploader uses HTTP basic auth on the URL, checked against `basic_auth`.

Normalize. One voice interaction per record. external_id = `uniqueid` / `uuid`, or, when the file has none, a
SHA-256 of the record's fields, so uploading the same file twice changes nothing. Status: `ANSWERED` → completed,
`NO ANSWER` → no_answer, `BUSY` → busy, `FAILED` / `CONGESTION` → failed; a FreeSWITCH call with an `answer_stamp` →
completed, otherwise by hangup cause: NO_ANSWER, NO_USER_RESPONSE, ALLOTTED_TIMEOUT, NORMAL_CLEARING → no_answer;
USER_BUSY, CALL_REJECTED → busy; ORIGINATOR_CANCEL → abandoned (inbound) or canceled; LOSE_RACE, PICKED_OFF →
canceled; any other → failed. Direction, first rule that applies:

1. `options["business_numbers"]` (comma-separated DIDs/extensions): the destination is one → inbound; the source is
   one → outbound (digits compared, ignoring `+`, leading zeros and a missing country prefix);
2. the context (`dcontext` / `context`) names the trunk side — contains `from-external`, `from-trunk`, `from-pstn`,
   `from-did` or `public` → inbound;
3. the source is an extension (at most 6 digits): to another extension → internal, else → outbound;
4. otherwise inbound.

The customer is the source of an inbound call (display name from `clid` / `caller_id_name`) and the destination of
an outbound one; internal calls have none; withheld numbers give no identifier. `occurred_at` = start,
`answered_at` = answer of an answered call, `ended_at` = end, `talk_seconds` = billsec. A value that cannot be read
is a PayloadError naming the record and the column (`row 3, column start`)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors._base import ConnectorSettings, Fragment, Parsed, PayloadError, Reply, WebhookRequest
from connectors._common import check_basic_auth, first_values
from schemas import Channel, CustomerParty, Direction, Identifier, InteractionEvent, InteractionStatus, VoiceDetails
from schemas._interaction import Endpoint


@dataclass(frozen=True)
class Layout:
    """Where one PBX writes each part of a call record."""

    name: str
    min_columns: int
    max_columns: int | None
    caller: str
    callee: str
    context: str
    start: str
    answer: str
    end: str
    billsec: str
    result: str
    call_id: str
    caller_name: str
    kept: tuple[str, ...]  # copied to attributes when not empty


ASTERISK_BASE = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata",
    "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)  # fmt: skip
ASTERISK_OPTIONAL = ("uniqueid", "userfield")
ASTERISK_NEW = ("peeraccount", "linkedid", "sequence")
FREESWITCH_COLUMNS = (
    "caller_id_name", "caller_id_number", "destination_number", "context", "start_stamp", "answer_stamp",
    "end_stamp", "duration", "billsec", "hangup_cause", "uuid", "bleg_uuid", "accountcode", "read_codec",
    "write_codec", "sip_user_agent",
)  # fmt: skip
ASTERISK = Layout(
    name="asterisk", min_columns=16, max_columns=21, caller="src", callee="dst", context="dcontext",
    start="start", answer="answer", end="end", billsec="billsec", result="disposition", call_id="uniqueid",
    caller_name="clid", kept=("accountcode", "channel", "dstchannel", "lastapp", "userfield", "linkedid"),
)  # fmt: skip
FREESWITCH = Layout(
    name="freeswitch", min_columns=13, max_columns=None, caller="caller_id_number", callee="destination_number",
    context="context", start="start_stamp", answer="answer_stamp", end="end_stamp", billsec="billsec",
    result="hangup_cause", call_id="uuid", caller_name="caller_id_name",
    kept=("accountcode", "bleg_uuid", "read_codec", "write_codec"),
)  # fmt: skip
LAYOUTS = {"asterisk": ASTERISK, "freeswitch": FREESWITCH}

DISPOSITIONS: dict[str, InteractionStatus] = {
    "ANSWERED": "completed",
    "NO ANSWER": "no_answer",
    "BUSY": "busy",
    "FAILED": "failed",
    "CONGESTION": "failed",
}
HANGUP_CAUSES: dict[str, InteractionStatus] = {
    "NO_ANSWER": "no_answer",
    "NO_USER_RESPONSE": "no_answer",
    "ALLOTTED_TIMEOUT": "no_answer",
    "NORMAL_CLEARING": "no_answer",
    "USER_BUSY": "busy",
    "CALL_REJECTED": "busy",
    "ORIGINATOR_CANCEL": "canceled",
    "LOSE_RACE": "canceled",
    "PICKED_OFF": "canceled",
}
INBOUND_CONTEXTS = ("from-external", "from-trunk", "from-pstn", "from-did", "public")
WITHHELD = frozenset({"", "anonymous", "restricted", "unknown", "private", "withheld", "unavailable", "blocked"})
EXTENSION_DIGITS = 6
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?$")
_CLID = re.compile(r'^\s*"?(?P<name>[^"<]*?)"?\s*<(?P<number>[^>]*)>\s*$')


class CdrCsv:
    name: ClassVar[str] = "cdr-csv"
    channel: ClassVar[Channel] = "voice"
    reply: ClassVar[Reply] = Reply()

    def verify(self, request: WebhookRequest, settings: ConnectorSettings) -> None:
        check_basic_auth(request, settings)

    def parse(self, request: WebhookRequest, settings: ConnectorSettings) -> Parsed:
        query = first_values(request.query)
        zone = _zone(query.get("tz") or settings.timezone, "tz" if query.get("tz") else "timezone")
        wanted = (query.get("format") or "").strip().lower()
        if wanted and wanted not in LAYOUTS:
            raise PayloadError(f"format must be asterisk or freeswitch, not {wanted[:40]!r}", field="format")
        business = _business_numbers(settings.options.get("business_numbers", ""))
        layout = LAYOUTS.get(wanted)
        events = []
        for number, row in _records(request.body):
            if layout is None:
                layout = _detect(row, number)
            events.append(call_event(_named(layout, row, number), layout, number, zone, business))
        if not events:
            raise PayloadError("the file holds no call records", field="$")
        return Parsed(events=events)

    def assemble(self, fragments: list[Fragment]) -> InteractionEvent:
        raise NotImplementedError("call records are never split")


def call_event(
    cells: Mapping[str, str], layout: Layout, number: int, zone: ZoneInfo, business: frozenset[str]
) -> InteractionEvent:
    """One CDR row (cells by column name) as an interaction event."""

    def where(column: str) -> str:
        return f"row {number}, column {column}"

    def stamp(column: str) -> datetime | None:
        value = cells.get(column, "")
        if not value:
            return None
        if not _STAMP.match(value):
            raise PayloadError(f"{column} is not a YYYY-MM-DD HH:MM:SS time: {value[:40]!r}", field=where(column))
        return datetime.fromisoformat(value).replace(tzinfo=zone)

    start = stamp(layout.start)
    if start is None:
        raise PayloadError(f"{layout.start} is empty", field=where(layout.start))
    end = stamp(layout.end)
    billsec_text = cells.get(layout.billsec, "") or "0"
    if not billsec_text.isdigit() or int(billsec_text) > 31_536_000:
        raise PayloadError(f"billsec is not a number of seconds: {billsec_text[:40]!r}", field=where(layout.billsec))

    for column, limit in ((layout.caller, 320), (layout.callee, 320), (layout.call_id, 512), (layout.result, 128)):
        if len(cells.get(column, "")) > limit:
            raise PayloadError(f"{column} is longer than {limit} characters", field=where(column))
    result = cells.get(layout.result, "").upper()
    caller, callee = cells.get(layout.caller, ""), cells.get(layout.callee, "")
    direction = _direction(caller, callee, cells.get(layout.context, "").lower(), business)
    status = _status(layout, result, answered=bool(cells.get(layout.answer)), direction=direction)
    if status is None:
        raise PayloadError(f"unknown disposition {result[:40]!r}", field=where(layout.result))
    answered_at = stamp(layout.answer) if status == "completed" else None
    for column, value in ((layout.answer, answered_at), (layout.end, end)):
        if value is not None and value < start:
            raise PayloadError(f"{column} is earlier than {layout.start}", field=where(column))

    customer = CustomerParty()
    if direction == "inbound" and caller.lower() not in WITHHELD:
        name = _caller_name(cells.get(layout.caller_name, ""), caller, layout)
        customer = CustomerParty(identifiers=[Identifier(kind="phone", value=caller)], display_name=name)
    elif direction == "outbound" and callee.lower() not in WITHHELD:
        customer = CustomerParty(identifiers=[Identifier(kind="phone", value=callee)])
    business_side = caller if direction == "outbound" else callee
    call_id = cells.get(layout.call_id) or _row_hash(layout, cells)
    return InteractionEvent(
        source=CdrCsv.name,
        external_id=call_id,
        channel="voice",
        direction=direction,
        occurred_at=start,
        status=status,
        answered_at=answered_at,
        ended_at=end,
        customer=customer,
        endpoint=Endpoint(kind="phone", value=business_side) if business_side else None,
        thread_key=cells.get("linkedid", "")[:512] or None,
        talk_seconds=float(billsec_text) if status == "completed" else None,
        attributes={key: cells[key][:4096] for key in layout.kept if cells.get(key)},
        details=VoiceDetails(disconnect_reason=result or None),
    )


def _records(body: bytes) -> Iterator[tuple[int, list[str]]]:
    """Non-empty CSV records, numbered from 1 as lines are (a header line is skipped)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("latin-1")
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    number = 0
    while True:
        number += 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise PayloadError(f"the CSV is malformed: {exc}", field=f"row {number}") from None
        cells = [cell.strip() for cell in row]
        if not any(cells) or (number == 1 and cells[0].lower() in ("accountcode", "caller_id_name")):
            continue
        for column, cell in enumerate(cells, start=1):
            if "\x00" in cell:
                raise PayloadError("the value holds a NUL character", field=f"row {number}, column {column}")
        yield number, cells


def _detect(row: Sequence[str], number: int) -> Layout:
    if len(row) >= FREESWITCH.min_columns and _STAMP.match(row[4]):
        return FREESWITCH
    if len(row) >= ASTERISK.min_columns and _STAMP.match(row[9]):
        return ASTERISK
    raise PayloadError(
        f"neither an Asterisk Master.csv nor a FreeSWITCH mod_cdr_csv record ({len(row)} columns, no start time in "
        "column 5 or 10); send ?format=asterisk or ?format=freeswitch",
        field=f"row {number}",
    )


def _named(layout: Layout, row: Sequence[str], number: int) -> dict[str, str]:
    count = len(row)
    if count < layout.min_columns or (layout.max_columns is not None and count > layout.max_columns):
        limits = f"{layout.min_columns} to {layout.max_columns}" if layout.max_columns else f"{layout.min_columns}+"
        raise PayloadError(f"{count} columns; a {layout.name} record has {limits}", field=f"row {number}")
    if layout is ASTERISK:
        new = ASTERISK_NEW if count >= 19 else ()
        names = ASTERISK_BASE + ASTERISK_OPTIONAL[: count - 16 - len(new)] + new
    else:
        names = FREESWITCH_COLUMNS + tuple(f"column {i}" for i in range(len(FREESWITCH_COLUMNS) + 1, count + 1))
    return dict(zip(names, row, strict=False))


def _status(layout: Layout, result: str, *, answered: bool, direction: Direction) -> InteractionStatus | None:
    if layout is ASTERISK:
        return DISPOSITIONS.get(result)
    if answered:
        return "completed"
    status = HANGUP_CAUSES.get(result, "failed")
    return "abandoned" if result == "ORIGINATOR_CANCEL" and direction == "inbound" else status


def _direction(caller: str, callee: str, context: str, business: frozenset[str]) -> Direction:
    if _is_business(callee, business):
        return "inbound"
    if _is_business(caller, business):
        return "outbound"
    if any(marker in context for marker in INBOUND_CONTEXTS):
        return "inbound"
    if _is_extension(caller):
        return "internal" if _is_extension(callee) else "outbound"
    return "inbound"


def _is_extension(value: str) -> bool:
    return value.isdigit() and len(value) <= EXTENSION_DIGITS


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value).lstrip("0")


def _business_numbers(option: str) -> frozenset[str]:
    return frozenset(d for part in option.split(",") if (d := _digits(part)))


def _is_business(value: str, business: frozenset[str]) -> bool:
    digits = _digits(value)
    if not digits:
        return False
    if digits in business:
        return True
    return any(min(len(digits), len(b)) >= 7 and (digits.endswith(b) or b.endswith(digits)) for b in business)


def _caller_name(raw: str, number: str, layout: Layout) -> str | None:
    """The display name: FreeSWITCH's caller_id_name, or the name in Asterisk's clid (`"Jane Roe" <4155550123>`)."""
    name = raw
    if layout is ASTERISK:
        match = _CLID.match(raw)
        name = match["name"] if match else ""
    name = name.strip().strip('"').strip()
    if not name or name == number or name.lower() in WITHHELD:
        return None
    return name[:256]


def _row_hash(layout: Layout, cells: Mapping[str, str]) -> str:
    digest = hashlib.sha256("\x1f".join([layout.name, *cells.values()]).encode()).hexdigest()
    return f"{layout.name}-sha256-{digest[:40]}"


def _zone(name: str, field: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PayloadError(
            f"unknown time zone {name[:60]!r} (use an IANA name like Europe/Berlin)", field=field
        ) from None


connector = CdrCsv()
