"""Webhook throughput of unify: every connector's parse + normalize on one core, and `twilio-sms` end to end.

What is measured
    1. Parse + normalize, per connector, in-process on one core. For each connector of
       `connectors.registry.connector_names()`, one realistic delivery is built from its test fixtures and signed
       the way its unit tests sign (HMAC with the connector's own signature function, or HTTP basic auth for the
       platforms that do not sign). `connector.verify(request, settings)` + `connector.parse(request, settings)`
       then run in a tight loop for about 1 s after a short warm-up; the rate is that of the fastest of five equal
       slices of that second (as with timeit: slower slices are other processes getting in the way). Reported:
       calls/s, and messages/s (the events and fragments one call produces: a CDR CSV upload of N rows is N
       messages). The bare ceiling, timed in the same run: `msgspec.json.decode` of a ~1 KB JSON body (for
       connectors whose platform posts JSON) or `urllib.parse.parse_qsl` of a ~1 KB form body (for the others:
       forms, multipart, MIME, CSV), both holding the fields of a Twilio MMS webhook, timed before and after the
       connectors (their mean is used; a note is printed when they differ by more than 20 %).
       `ratio` = the connector's messages/s ÷ its ceiling's decodes/s.
    2. `POST /v1/webhooks/twilio-sms` through HTTP into PostgreSQL. Each request is a Twilio incoming-SMS form
       (the fields of tests/fixtures/twilio-sms/incoming-sms.txt) with a unique MessageSid (SM + 32 hex) and one of
       ~5,000 From numbers, signed with a correct X-Twilio-Signature (base64 HMAC-SHA1 of the auth token over the
       public URL + the sorted name/value pairs). The bodies are precomputed into a pool file before each run
       (wrk's Lua has no HMAC-SHA1; the Python client reads the same file). The bare ceiling is the app of
       `bench/ingest.py` (`bench/_bare_app.py`: msgspec decode + one-row asyncpg insert) fed JSON bodies of exactly
       the same size, carrying the same MessageSid as `external_id` and as many of the same fields as fit. The
       figure that matters is `ratio (unify twilio-sms / bare)` (target ≥ 0.5). Afterwards, the interactions with
       source 'twilio-sms' written by the measured runs are counted against the acknowledged (2xx) answers.

How
    The parse part needs nothing but this interpreter. For the HTTP part, as in `bench/ingest.py` (whose
    machinery this reuses): an embedded PostgreSQL in a temporary directory, `unify serve --workers 1` and the
    bare app under granian, the connector configured with
    `unify connectors set twilio-sms --secret <token> --public-base-url http://127.0.0.1:<port>`, one signed probe
    per target, then per target a warm-up (default 2 s) and a measured run (default 10 s) of 32 keep-alive
    connections, from wrk (Lua) when on PATH, else from Python processes. req/s counts 2xx answers only;
    latencies are client-side. Everything started is stopped and the temporary directory removed at the end, on
    Ctrl-C and on error too. Client, servers and PostgreSQL share the machine's cores: use `--rounds 3` on a
    shared machine.

Run
    .venv/bin/python bench/webhooks.py
    .venv/bin/python bench/webhooks.py --duration 30 --rounds 3
    .venv/bin/python bench/webhooks.py --only parse --json
    .venv/bin/python bench/webhooks.py --only http --client python

The exit status is 1 when the stored and acknowledged counts disagree (or a server failed), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import math
import os
import random
import secrets
import shutil
import string
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode

import httpx
import msgspec

# bench/ is not a package: this script's directory is on sys.path when it runs, so bench/ingest.py imports as `ingest`.
from ingest import (
    PHONE_NUMBERS,
    PROJECT_DIR,
    TARGET_RATIO,
    LoadResult,
    TargetResult,
    _checkpoint,
    _read_response,
    _WorkerResult,
    bench_targets,
    log,
    percentile,
    print_table,
    report_main,
    settled_count,
    unify_command,
)

from connectors._base import ConnectorSettings, WebhookRequest
from connectors._twilio import twilio_signature
from connectors.chat.chatwoot import chatwoot_signature
from connectors.chat.intercom import hub_signature
from connectors.chat.native import unify_signature
from connectors.email.mailgun import mailgun_signature
from connectors.registry import connector_names, get_connector
from connectors.sms.vonage_sms import vonage_signature

FIXTURES = PROJECT_DIR / "tests" / "fixtures"
PUBLIC_URL = "https://unify.example.com/v1/webhooks/"  # the URL the parse part's requests were "called" on
TWILIO_PATH = "/v1/webhooks/twilio-sms"
SOURCE = "twilio-sms"
FORM = "application/x-www-form-urlencoded"

# ---------------------------------------------------------------------------------------------------------------
# Part 1: parse + normalize, in-process

BodyKind = Literal["json", "form"]


@dataclass(frozen=True)
class ParseCase:
    """One connector's delivery, signed, with the settings that verify it."""

    connector: str
    fixture: str
    request: WebhookRequest
    settings: ConnectorSettings
    kind: BodyKind  # which ceiling it is compared with: JSON bodies with msgspec, the rest with parse_qsl


def _fixture(directory: str, name: str) -> bytes:
    return (FIXTURES / directory / name).read_bytes()


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def _request(
    connector: str,
    body: bytes,
    content_type: str,
    now: datetime,
    headers: dict[str, str] | None = None,
    query: tuple[tuple[str, str], ...] = (),
) -> WebhookRequest:
    url = PUBLIC_URL + connector + (f"?{urlencode(query)}" if query else "")
    return WebhookRequest(
        method="POST",
        url=url,
        headers={"content-type": content_type, **(headers or {})},
        body=body,
        received_at=now,
        query=query,
    )


def _basic_auth_case(
    connector: str, directory: str, name: str, content_type: str, kind: BodyKind, now: datetime, **options: str
) -> ParseCase:
    """Platforms that do not sign: HTTP basic auth in the URL they call."""
    credentials = f"{connector}:bench-{secrets.token_hex(6)}"
    body = _fixture(directory, name)
    request = _request(connector, body, content_type, now, {"authorization": _basic(credentials)})
    return ParseCase(connector, name, request, ConnectorSettings(basic_auth=credentials, options=options), kind)


def _twilio_case(connector: str, name: str, now: datetime) -> ParseCase:
    token = secrets.token_hex(16)
    body = _fixture(connector, name)
    signature = twilio_signature(token, PUBLIC_URL + connector, parse_qsl(body.decode(), keep_blank_values=True))
    request = _request(connector, body, FORM, now, {"x-twilio-signature": signature})
    return ParseCase(connector, name, request, ConnectorSettings(secret=token), "form")


def _json_signed_case(
    connector: str, directory: str, name: str, now: datetime, sign: Callable[[str, bytes], dict[str, str]]
) -> ParseCase:
    secret = secrets.token_hex(16)
    body = _fixture(directory, name)
    request = _request(connector, body, "application/json", now, sign(secret, body))
    return ParseCase(connector, name, request, ConnectorSettings(secret=secret), "json")


def _mailgun_case(now: datetime) -> ParseCase:
    """The fixture re-signed with a fresh timestamp and token, as the unit tests' `form()` rebuilds it."""
    key = "key-" + secrets.token_hex(16)
    name = "forward-urlencoded.txt"
    fields = dict(parse_qsl(_fixture("mailgun", name).decode(), keep_blank_values=True))
    timestamp, token = str(int(now.timestamp())), secrets.token_hex(25)
    fields |= {"timestamp": timestamp, "token": token, "signature": mailgun_signature(key, timestamp, token)}
    request = _request("mailgun", urlencode(fields).encode(), FORM, now, {"user-agent": "mailgun/treq-16.12.0"})
    return ParseCase("mailgun", name, request, ConnectorSettings(secret=key), "form")


def _vonage_case(now: datetime) -> ParseCase:
    """The fixture re-signed (md5hash, Vonage's default) with a fresh timestamp, as the unit tests' `resigned()`."""
    secret = secrets.token_urlsafe(27)
    name = "inbound-signed.txt"
    params = dict(parse_qsl(_fixture("vonage-sms", name).decode(), keep_blank_values=True))
    params = {k: v for k, v in params.items() if k != "sig"} | {"timestamp": str(int(now.timestamp()))}
    params["sig"] = vonage_signature(params, secret)
    request = _request("vonage-sms", urlencode(params).encode(), FORM, now, {"user-agent": "Nexmo/MessagingHUB/v1.0"})
    return ParseCase("vonage-sms", name, request, ConnectorSettings(secret=secret), "form")


def _unify_headers(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    return {"x-unify-timestamp": stamp, "x-unify-signature": unify_signature(secret, stamp, body)}


def _chatwoot_headers(secret: str, body: bytes, now: datetime) -> dict[str, str]:
    stamp = str(int(now.timestamp()))
    return {
        "x-chatwoot-timestamp": stamp,
        "x-chatwoot-signature": chatwoot_signature(secret, stamp, body),
        "x-chatwoot-delivery": "5d0f6a8e-3c1b-4f2a-9e7d-1b2c3d4e5f60",
    }


def parse_cases(now: datetime) -> dict[str, Callable[[], ParseCase]]:
    """How to build each connector's case: one typical delivery of each platform."""
    cdr_query = (("tz", "America/New_York"),)
    return {
        "amazon-connect": lambda: _basic_auth_case(
            "amazon-connect", "amazon-connect", "inbound-voice.json", "application/json", "json", now
        ),
        "cdr-csv": lambda: _with_query(
            _basic_auth_case("cdr-csv", "cdr-csv", "asterisk-Master.csv", "text/csv", "form", now), cdr_query
        ),
        "chat": lambda: _json_signed_case(
            "chat", "chat", "message.json", now, lambda secret, body: _unify_headers(secret, body, now)
        ),
        "chatwoot": lambda: _json_signed_case(
            "chatwoot",
            "chatwoot",
            "message_created-incoming.json",
            now,
            lambda secret, body: _chatwoot_headers(secret, body, now),
        ),
        "email-mime": lambda: _basic_auth_case(
            "email-mime",
            "email-mime",
            "thread-1-question.eml",
            "message/rfc822",
            "form",
            now,
            trusted_authserv_id="mx.acme.test",
        ),
        "intercom": lambda: _json_signed_case(
            "intercom",
            "intercom",
            "conversation.user.created.json",
            now,
            lambda secret, body: {"x-hub-signature": hub_signature(secret, body)},
        ),
        "mailgun": lambda: _mailgun_case(now),
        "postmark": lambda: _basic_auth_case("postmark", "postmark", "inbound.json", "application/json", "json", now),
        "sendgrid": lambda: _basic_auth_case(
            "sendgrid", "sendgrid", "default.txt", "multipart/form-data; boundary=xYzZY", "form", now
        ),
        "sunshine-conversations": lambda: _json_signed_case(
            "sunshine-conversations",
            "sunshine-conversations",
            "message-anonymous.json",
            now,
            lambda secret, body: {"x-api-key": secret},
        ),
        "twilio-sms": lambda: _twilio_case("twilio-sms", "incoming-sms.txt", now),
        "twilio-voice": lambda: _twilio_case("twilio-voice", "incoming-call.txt", now),
        "vonage-sms": lambda: _vonage_case(now),
    }


def _with_query(case: ParseCase, query: tuple[tuple[str, str], ...]) -> ParseCase:
    r = case.request
    request = _request(case.connector, r.body, r.headers["content-type"], r.received_at, dict(r.headers), query)
    return ParseCase(case.connector, case.fixture, request, case.settings, case.kind)


def calls_per_second(call: Callable[[], object], seconds: float, warmup: float, slices: int = 5) -> float:
    """Run `call` for `warmup` seconds, then for `seconds` in `slices` equal slices (in batches of ~5 ms) and return
    the rate of the fastest slice: as with timeit, slower slices are other processes getting in the way."""
    calls, started = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        if time.perf_counter() - started >= warmup:
            break
    batch = max(1, int(0.005 * calls / max(time.perf_counter() - started, 1e-9)))
    best = 0.0
    for _ in range(slices):
        calls, started = 0, time.perf_counter()
        while True:
            for _ in range(batch):
                call()
            calls += batch
            elapsed = time.perf_counter() - started
            if elapsed >= seconds / slices:
                break
        best = max(best, calls / elapsed)
    return best


def ceiling_bodies() -> tuple[bytes, bytes]:
    """A ~1 KB form body and the same fields as a JSON object: a Twilio MMS webhook, its Body made longer."""
    fields = parse_qsl(_fixture("twilio-sms", "incoming-mms.txt").decode(), keep_blank_values=True)
    form = urlencode(fields).encode()
    filler = 1024 - len(form)
    if filler > 0:
        fields = [(n, v + " please" * (filler // 7) if n == "Body" else v) for n, v in fields]
    return urlencode(fields).encode(), msgspec.json.encode(dict(fields))


CEILING_DRIFT = 0.2  # ceilings timed before and after the connectors that differ by more than this: a noisy machine


def time_ceilings(args: argparse.Namespace, form_body: bytes, json_body: bytes) -> dict[BodyKind, float]:
    """Decodes per second of the two bare ceilings."""
    json_rate = calls_per_second(lambda: msgspec.json.decode(json_body), args.parse_seconds, args.parse_warmup)
    form_rate = calls_per_second(
        lambda: parse_qsl(form_body.decode("utf-8"), keep_blank_values=True), args.parse_seconds, args.parse_warmup
    )
    return {"json": json_rate, "form": form_rate}


def run_parse(args: argparse.Namespace) -> dict[str, Any]:
    """Time every connector, between two timings of the ceilings (their mean is the ceiling: drift shows)."""
    now = datetime.now(UTC)
    form_body, json_body = ceiling_bodies()
    log("parse: timing the ceilings")
    before = time_ceilings(args, form_body, json_body)

    builders = parse_cases(now)
    rows: list[dict[str, Any]] = []
    for name in connector_names():
        connector = get_connector(name)
        if connector is None or name not in builders:
            log(f"parse: no case for connector {name!r}: skipped")
            rows.append({"connector": name, "skipped": True})
            continue
        case = builders[name]()
        request, settings = case.request, case.settings
        connector.verify(request, settings)  # a wrongly signed case fails here, loudly, before it is timed
        parsed = connector.parse(request, settings)
        messages = len(parsed.events) + len(parsed.fragments)
        if messages == 0:
            raise RuntimeError(f"{name}: {case.fixture} produced no message")

        def call(
            connector: Any = connector, request: WebhookRequest = request, settings: ConnectorSettings = settings
        ) -> object:
            connector.verify(request, settings)
            return connector.parse(request, settings)

        log(f"parse: {name} ({case.fixture})")
        rate = calls_per_second(call, args.parse_seconds, args.parse_warmup)
        rows.append(
            {
                "connector": name,
                "fixture": case.fixture,
                "body_bytes": len(request.body),
                "messages_per_call": messages,
                "calls_per_s": round(rate, 1),
                "messages_per_s": round(rate * messages, 1),
                "ceiling": case.kind,
            }
        )

    log("parse: timing the ceilings again")
    after = time_ceilings(args, form_body, json_body)
    sizes: dict[BodyKind, int] = {"json": len(json_body), "form": len(form_body)}
    whats: dict[BodyKind, str] = {"json": "msgspec.json.decode", "form": "urllib.parse.parse_qsl"}
    ceilings = {
        kind: {
            "what": whats[kind],
            "body_bytes": sizes[kind],
            "per_s": round((before[kind] + after[kind]) / 2, 1),
            "before_per_s": round(before[kind], 1),
            "after_per_s": round(after[kind], 1),
            "drifted": abs(before[kind] - after[kind]) > CEILING_DRIFT * max(before[kind], after[kind]),
        }
        for kind in ("json", "form")
    }
    for row in rows:
        if not row.get("skipped"):
            row["ratio"] = round(row["messages_per_s"] / ceilings[row["ceiling"]]["per_s"], 4)
    return {
        "seconds_per_connector": args.parse_seconds,
        "warmup_s": args.parse_warmup,
        "ceilings": ceilings,
        "connectors": rows,
    }


def print_parse(report: dict[str, Any]) -> None:
    print(
        f"\nparse + normalize, in-process on one core: verify + parse per call, fastest of 5 slices over "
        f"{report['seconds_per_connector']:g} s per connector, after {report['warmup_s']:g} s warm-up"
    )
    for kind, c in report["ceilings"].items():
        drift = (
            f"  (before {c['before_per_s']:,.0f}/s, after {c['after_per_s']:,.0f}/s: the machine's speed changed, "
            "ratios are rough)"
            if c["drifted"]
            else ""
        )
        print(f"ceiling {kind:<4}: {c['what']} of a {c['body_bytes']}-byte {kind} body = {c['per_s']:,.0f}/s{drift}")
    print(
        f"{'connector':<24} {'fixture':<32} {'bytes':>6} {'msg/call':>8} {'calls/s':>9} {'msgs/s':>9} "
        f"{'ceiling':>7} {'ratio':>6}"
    )
    for row in report["connectors"]:
        if row.get("skipped"):
            print(f"{row['connector']:<24} (no case: skipped)")
            continue
        print(
            f"{row['connector']:<24} {row['fixture']:<32} {row['body_bytes']:>6} {row['messages_per_call']:>8} "
            f"{row['calls_per_s']:>9,.0f} {row['messages_per_s']:>9,.0f} {row['ceiling']:>7} {row['ratio']:>6.3f}"
        )


# ---------------------------------------------------------------------------------------------------------------
# Part 2: twilio-sms through HTTP. Bodies are precomputed into pool files: one line per request, `signature\tbody`.

_SID = "SM" + "Z" * 32  # placeholders of the real values' length, replaced in templates
_PHONE = "+1415555QQQQ"
_SID_FIELDS = ("MessageSid", "SmsSid", "SmsMessageSid")
WARMUP_TAG = "00"  # MessageSids are SM + 22 random hex + a 2-hex run tag + an 8-hex sequence number
PROBE_TAG = "fe"


def message_sid(tag: str, sequence: int, random_hex: str) -> str:
    """Random first (index inserts land all over the index, as Twilio's do), then what makes it unique."""
    return f"SM{random_hex}{tag}{sequence:08x}"


def sid_pattern(tag: str) -> str:
    """`like` pattern of the MessageSids of one run tag."""
    return "SM" + "_" * 22 + tag + "%"


def _sms_fields() -> list[tuple[str, str]]:
    fields = parse_qsl(_fixture("twilio-sms", "incoming-sms.txt").decode(), keep_blank_values=True)
    return [(n, _SID if n in _SID_FIELDS else _PHONE if n == "From" else v) for n, v in fields]


class SignedSmsBodies:
    """Twilio incoming-SMS forms with X-Twilio-Signature, from templates: a body costs two replaces and one HMAC."""

    content_type = FORM
    header = "X-Twilio-Signature"

    def __init__(self, url: str, token: str) -> None:
        self.url, self.key = url, token.encode()
        fields = _sms_fields()
        self.body_template = urlencode(fields).replace(quote_plus(_PHONE), _PHONE)  # the number goes in encoded
        # What Twilio signs: the URL, then every name + value, sorted by name.
        self.signed_template = url + "".join(n + v for n, v in sorted(fields, key=lambda p: p[0]))
        self.size = len(self.make(_SID, _PHONE)[1])

    def make(self, sid: str, phone: str) -> tuple[str, str]:
        signed = self.signed_template.replace(_SID, sid).replace(_PHONE, phone)
        signature = base64.b64encode(hmac.new(self.key, signed.encode(), hashlib.sha1).digest()).decode()
        return signature, self.body_template.replace(_SID, sid).replace(_PHONE, quote_plus(phone))

    def check(self, token: str) -> None:
        """The template's signature is what the connector's own function computes."""
        signature, body = self.make(message_sid("00", 0, "0" * 22), "+14155550000")
        if signature != twilio_signature(token, self.url, parse_qsl(body, keep_blank_values=True)):
            raise RuntimeError("the precomputed X-Twilio-Signature does not match connectors._twilio")


class BareJsonBodies:
    """JSON bodies of exactly `size` bytes for the bare app: the MessageSid as `external_id`, then as many of the
    SMS form's fields as fit, then padding."""

    content_type = "application/json"
    header = ""

    def __init__(self, size: int) -> None:
        document: dict[str, str] = {"external_id": _SID}
        for name, value in sorted(_sms_fields(), key=lambda p: p[0] != "From"):  # the sender first
            if len(msgspec.json.encode(document | {name: value, "pad": ""})) > size:
                break
            document[name] = value
        document["pad"] = ""
        document["pad"] = "." * (size - len(msgspec.json.encode(document)))
        self.template = msgspec.json.encode(document).decode()
        self.size = len(self.template)

    def make(self, sid: str, phone: str) -> tuple[str, str]:
        return "", self.template.replace(_SID, sid).replace(_PHONE, phone)


Bodies = SignedSmsBodies | BareJsonBodies


def write_pool(bodies: Bodies, path: Path, tag: str, count: int) -> None:
    randoms = os.urandom(11 * count).hex()
    with path.open("w") as out:
        for index in range(count):
            sid = message_sid(tag, index, randoms[22 * index : 22 * index + 22])
            signature, body = bodies.make(sid, f"+1415555{random.randrange(PHONE_NUMBERS):04d}")
            out.write(f"{signature}\t{body}\n")


# --- load from wrk ---------------------------------------------------------------------------------------------

_LUA = string.Template(r"""
-- Generated by bench/webhooks.py: POST the precomputed bodies of a pool file, each once (thread i takes lines
-- i, i + n, …); should a thread run out, it starts over and counts the repeats as `reused`.
local pool, nthreads, header = "$pool", $threads, "$header"
local threads = {}
local signatures, bodies, count, next_index, wrapped = {}, {}, 0, 0, false
id, started, ok, bad, reused = 0, 0, 0, 0, 0

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  -- wrk calls request() once on the first thread, after init, to check it: that one is never sent.
  if id == 0 then started = -1 end
  local line_number = 0
  for line in io.lines(pool) do
    if line_number % nthreads == id then
      local tab = string.find(line, "\t", 1, true)
      count = count + 1
      signatures[count] = string.sub(line, 1, tab - 1)
      bodies[count] = string.sub(line, tab + 1)
    end
    line_number = line_number + 1
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "$content_type"
end

function request()
  started = started + 1
  next_index = next_index + 1
  if next_index > count then next_index, wrapped = 1, true end
  if wrapped then reused = reused + 1 end
  if header ~= "" then wrk.headers[header] = signatures[next_index] end
  return wrk.format(nil, nil, nil, bodies[next_index])
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end

function done(summary, latency, requests)
  local s, o, b, r = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    s = s + thread:get("started")
    o = o + thread:get("ok")
    b = b + thread:get("bad")
    r = r + thread:get("reused")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"duration_us": %d, "started": %d, "ok": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"reused": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.duration, s, o, b, e.connect + e.read + e.write + e.timeout, r,
    latency:percentile(50), latency:percentile(99)))
end
""")


def run_wrk(url: str, bodies: Bodies, pool: Path, duration: int, connections: int) -> tuple[LoadResult, int]:
    threads = max(1, min(2, connections))
    script = pool.with_suffix(".lua")
    script.write_text(
        _LUA.substitute(pool=pool, threads=threads, header=bodies.header, content_type=bodies.content_type)
    )
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    figures = json.loads(line.removeprefix("BENCH_RESULT "))
    answered = figures["ok"] + figures["non_2xx"]
    result = LoadResult(
        client="wrk",
        duration_s=figures["duration_us"] / 1e6,
        ok=figures["ok"],
        non_2xx=figures["non_2xx"],
        socket_errors=figures["socket_errors"],
        unanswered=max(0, figures["started"] - answered),
        p50_ms=figures["p50_us"] / 1000 if answered else None,
        p99_ms=figures["p99_us"] / 1000 if answered else None,
    )
    return result, figures["reused"]


# --- load from Python processes --------------------------------------------------------------------------------


@dataclass
class _PoolJob:
    host: str
    port: int
    path: str
    pool: str
    header: str
    content_type: str
    worker: int  # takes the pool's lines worker, worker + workers, …
    workers: int
    connections: int
    start_at: float  # wall-clock time at which every process starts sending
    duration: float


@dataclass
class _PoolResult(_WorkerResult):
    reused: int = 0


def _requests(job: _PoolJob) -> list[bytes]:
    """This process's share of the pool, as complete HTTP/1.1 requests."""
    head = f"POST {job.path} HTTP/1.1\r\nHost: {job.host}:{job.port}\r\nContent-Type: {job.content_type}\r\n"
    out = []
    with open(job.pool) as pool:
        for number, line in enumerate(pool):
            if number % job.workers == job.worker:
                signature, _, body = line.rstrip("\n").partition("\t")
                extra = f"{job.header}: {signature}\r\n" if job.header else ""
                out.append(f"{head}{extra}Content-Length: {len(body)}\r\n\r\n{body}".encode())
    return out


async def _drive(job: _PoolJob) -> _PoolResult:
    result = _PoolResult()
    requests = _requests(job)
    next_index = 0
    deadline = job.start_at + job.duration

    async def connection() -> None:
        nonlocal next_index
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while time.time() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(job.host, job.port)
                if next_index >= len(requests):
                    result.reused += 1
                payload = requests[next_index % len(requests)]
                next_index += 1
                started = time.perf_counter()
                writer.write(payload)
                assert reader is not None
                status, keep_alive = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                if 200 <= status < 300:
                    result.ok += 1
                else:
                    result.non_2xx += 1
                if not keep_alive:
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.socket_errors += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    await asyncio.sleep(max(0.0, job.start_at - time.time()))
    await asyncio.gather(*(connection() for _ in range(job.connections)))
    result.finished_at = time.time()
    return result


def run_python(
    url: str, bodies: Bodies, pool: Path, duration: int, connections: int, processes: int
) -> tuple[LoadResult, int]:
    """Split the connections over `processes` copies of this script (`--load-worker`), started together."""
    parsed = httpx.URL(url)
    processes = max(1, min(processes, connections))
    start_at = time.time() + 2.0  # time for every process to start, import and read its share of the pool
    jobs = [
        _PoolJob(
            host=parsed.host,
            port=parsed.port or 80,
            path=parsed.raw_path.decode(),
            pool=str(pool),
            header=bodies.header,
            content_type=bodies.content_type,
            worker=index,
            workers=processes,
            connections=connections // processes + (1 if index < connections % processes else 0),
            start_at=start_at,
            duration=duration,
        )
        for index in range(processes)
    ]
    workers: list[subprocess.Popen[str]] = []
    try:
        for job in jobs:
            argv = [sys.executable, str(Path(__file__).resolve()), "--load-worker", json.dumps(asdict(job))]
            workers.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        outputs = [worker.communicate()[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    if any(worker.returncode for worker in workers):
        raise RuntimeError("a load generator process failed")
    results = [_PoolResult(**json.loads(output)) for output in outputs]
    latencies = sorted(x for r in results for x in r.latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    load = LoadResult(
        client=f"python ({processes} processes)",
        duration_s=max(r.finished_at for r in results) - start_at,
        ok=sum(r.ok for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=sum(r.socket_errors for r in results),
        unanswered=sum(r.socket_errors for r in results),
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
    )
    return load, sum(r.reused for r in results)


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass
class WebhookTargetResult(TargetResult):
    """As bench/ingest.py's, plus the requests that repeated a body because the pool ran out (each may be
    acknowledged without adding a row)."""

    reused: int = 0
    body_bytes: int = 0
    tags: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return self.acknowledged - self.reused <= self.stored <= self.acknowledged + self.unanswered

    def as_dict(self) -> dict[str, Any]:
        return super().as_dict() | {"reused_bodies": self.reused, "body_bytes": self.body_bytes}


@dataclass
class HttpTarget:
    name: str
    url: str
    dsn: str
    count_query: str  # counts the rows whose external id is `like $1`
    bodies: Bodies


def pool_size(rps: float | None, seconds: int) -> int:
    """Enough bodies for `seconds` at 1.5 × the rate seen in the warm-up (at least 50,000)."""
    guess = rps if rps else 10_000.0
    return max(50_000, math.ceil(1.5 * guess * seconds) + 1_000)


def measure(targets: list[HttpTarget], args: argparse.Namespace, admin_dsn: str, workdir: Path) -> list[Any]:
    """Warm each target up, then measure them in turn, `args.rounds` times, alternating which goes first."""
    use_wrk = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk") is not None)

    def load(target: HttpTarget, tag: str, duration: int, count: int) -> tuple[LoadResult, int]:
        pool = workdir / f"pool-{target.name.replace(' ', '-')}-{tag}.txt"
        started = time.monotonic()
        write_pool(target.bodies, pool, tag, count)
        log(f"{target.name}: {count:,} bodies precomputed in {time.monotonic() - started:.1f} s")
        try:
            if use_wrk:
                return run_wrk(target.url, target.bodies, pool, duration, args.connections)
            return run_python(target.url, target.bodies, pool, duration, args.connections, args.client_processes)
        finally:
            pool.unlink(missing_ok=True)

    warm_rps: dict[str, float | None] = {target.name: None for target in targets}
    if args.warmup > 0:
        for target in targets:
            log(f"{target.name}: warm-up {args.warmup} s")
            result, _ = load(target, WARMUP_TAG, args.warmup, max(20_000, 10_000 * args.warmup))
            warm_rps[target.name] = result.rps
            settled_count(target.dsn, target.count_query, sid_pattern(WARMUP_TAG))
    results = {t.name: WebhookTargetResult(t.name, body_bytes=t.bodies.size) for t in targets}
    for round_number in range(1, args.rounds + 1):
        order = targets if round_number % 2 else targets[::-1]
        tag = f"{round_number:02x}"
        for target in order:
            count = pool_size(warm_rps[target.name], args.duration)
            asyncio.run(_checkpoint(admin_dsn))  # start each round with no dirty buffers left by the previous one
            log(
                f"{target.name}: measuring {args.duration} s with {args.connections} connections "
                f"(round {round_number} of {args.rounds})"
            )
            result, reused = load(target, tag, args.duration, count)
            if reused:
                log(f"{target.name}: the pool of {count:,} bodies ran out; {reused} requests repeated a body")
            results[target.name].rounds.append(result)
            results[target.name].reused += reused
            results[target.name].tags.append(tag)
    for target in targets:
        r = results[target.name]
        r.stored = sum(settled_count(target.dsn, target.count_query, sid_pattern(tag)) for tag in r.tags)
    return list(results.values())


def probe(target: HttpTarget) -> None:
    """One request before the load: a target that refuses the bodies fails the run here, with its answer."""
    signature, body = target.bodies.make(message_sid(PROBE_TAG, 0, secrets.token_hex(11)), "+14155550000")
    headers = {"content-type": target.bodies.content_type} | ({target.bodies.header: signature} if signature else {})
    response = httpx.post(target.url, content=body.encode(), headers=headers, timeout=30.0)
    if not response.is_success:
        raise RuntimeError(f"{target.name} refused a probe: {response.status_code} {response.text[:500]}")


def run_http(args: argparse.Namespace) -> dict[str, Any]:
    with bench_targets("unify-bench-webhooks-") as t:
        workdir, admin_dsn, unify_dsn, bare_dsn = t.workdir, t.admin_dsn, t.unify_dsn, t.bare_dsn
        unify_env, unify_port, bare_port = t.unify_env, t.unify_port, t.bare_port

        token = secrets.token_hex(16)  # a Twilio auth token is 32 hex digits
        public_base_url = f"http://127.0.0.1:{unify_port}"
        subprocess.run(
            [*unify_command(), "connectors", "set", SOURCE, "--secret", token, "--public-base-url", public_base_url],
            env=unify_env,
            capture_output=True,
            text=True,
            check=True,
        )
        sms = SignedSmsBodies(public_base_url + TWILIO_PATH, token)
        sms.check(token)
        targets = [
            # The bare app first (in odd rounds): it leaves less behind in PostgreSQL for the next run.
            HttpTarget(
                "bare",
                f"http://127.0.0.1:{bare_port}/",
                bare_dsn,
                "select count(*) from hit where external_id like $1",
                BareJsonBodies(sms.size),
            ),
            HttpTarget(
                "unify twilio-sms",
                public_base_url + TWILIO_PATH,
                unify_dsn,
                f"select count(*) from interaction where source = '{SOURCE}' and external_id like $1",
                sms,
            ),
        ]
        for target in targets:
            probe(target)
        results = {r.name: r for r in measure(targets, args, admin_dsn, workdir)}
        t.check_alive()

    unify_rps, bare_rps = results["unify twilio-sms"].median.rps, results["bare"].median.rps
    ratio = unify_rps / bare_rps if bare_rps else 0.0
    return {
        "client": results["unify twilio-sms"].median.client,
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "bare_bodies": f"JSON of the same size as the signed form ({sms.size} bytes) to bench/_bare_app.py",
        "targets": {name: r.as_dict() for name, r in results.items()},
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "consistent": all(r.consistent for r in results.values()),
    }


# ---------------------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of measured HTTP load per target (default 10)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="seconds of HTTP warm-up per target (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measured HTTP runs per target, alternating which goes first; the median is reported (default 1)",
    )
    parser.add_argument(
        "--client", choices=["auto", "wrk", "python"], default="auto", help="load generator (default: wrk if on PATH)"
    )
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes of the Python load generator (default 2)"
    )
    parser.add_argument("--only", choices=["parse", "http"], help="run only one of the two parts")
    parser.add_argument(
        "--parse-seconds", type=float, default=1.0, help="seconds of parse loop per connector (default 1)"
    )
    parser.add_argument(
        "--parse-warmup", type=float, default=0.2, help="seconds of parse warm-up per connector (default 0.2)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    parser.add_argument("--load-worker", metavar="JOB", help=argparse.SUPPRESS)  # one Python load process
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.rounds) < 1 or args.warmup < 0:
        parser.error("--duration, --connections and --rounds must be at least 1, --warmup at least 0")
    if args.rounds > 200:
        parser.error("--rounds is at most 200")  # each round's MessageSids carry its number as two hex digits
    if args.parse_seconds <= 0 or args.parse_warmup < 0:
        parser.error("--parse-seconds must be positive, --parse-warmup at least 0")
    if args.client == "wrk" and shutil.which("wrk") is None and args.only != "parse":
        parser.error("wrk is not on PATH (apt-get install wrk), use --client python")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_worker:
        job = _PoolJob(**json.loads(args.load_worker))
        print(json.dumps(asdict(asyncio.run(_drive(job)))))
        return 0

    def run() -> dict[str, Any]:
        # Each part's table is printed as soon as it is measured (the HTTP part takes a while).
        report: dict[str, Any] = {}
        if args.only != "http":
            report["parse"] = run_parse(args)
            if not args.json:
                print_parse(report["parse"])
                sys.stdout.flush()
        if args.only != "parse":
            report["http"] = run_http(args)
            if not args.json:
                print_table(report["http"], title="twilio-sms webhook ingest", subject="unify twilio-sms")
        return report

    return report_main(
        run, as_json=args.json, show=lambda report: None, ok=lambda r: r.get("http", {}).get("consistent", True)
    )


if __name__ == "__main__":
    sys.exit(main())
