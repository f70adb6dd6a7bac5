"""Hostile bodies against `POST /v1/interactions`: each one gets a 4xx problem naming what was wrong, or a handled
2xx; never a 5xx; and the raw body is kept with its status and error."""

from __future__ import annotations

import json

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.events import native_event
from tests.hostile._support import LIMIT, assert_handled

JSON = "application/json"
VALID = json.dumps(native_event()).encode()


def _event(**changes: object) -> bytes:
    return json.dumps(native_event(**changes)).encode()


def _customer(identifiers: list[dict[str, str]]) -> bytes:
    return _event(customer={"identifiers": identifiers, "display_name": "Ada"})


def _nested(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def _nested_in_attributes(depth: int) -> bytes:
    head, tail = VALID[:-1], b"}"
    return head + b', "attributes": {"x": ' + b"[" * depth + b"]" * depth + b"}" + tail


def _duplicate_key(key: str, second: object) -> bytes:
    return VALID[:-1] + f', "{key}": {json.dumps(second)}'.encode() + b"}"


# (body, content type, accepted statuses). 2xx: handled (stored); 4xx: a problem naming the cause.
CASES: dict[str, tuple[bytes, str | None, set[int]]] = {
    # --- malformed JSON
    "truncated-object": (VALID[: len(VALID) // 2], JSON, {400}),
    "truncated-batch": (b"[" + VALID + b"," + VALID[:40], JSON, {400}),
    "truncated-in-escape": (b'{"source": "native", "external_id": "a\\u00', JSON, {400}),
    "only-whitespace": (b" \r\n\t ", JSON, {400}),
    "raw-nul-byte": (VALID[:20] + b"\x00" + VALID[20:], JSON, {400}),
    "trailing-garbage": (VALID + b"}}}", JSON, {400}),
    "two-documents": (VALID + VALID, JSON, {400}),
    # --- depth
    "nested-arrays-30k": (_nested(30_000), JSON, {400}),
    "nested-objects-10k": (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, JSON, {400}),
    "nested-arrays-in-batch-element": (b"[" + VALID + b", " + _nested_in_attributes(20_000) + b"]", JSON, {400}),
    "nested-arrays-in-attributes-30k": (_nested_in_attributes(30_000), JSON, {400}),
    "nested-arrays-100k-over-limit": (_nested(100_000), JSON, {413}),
    # --- content types
    "content-type-text-plain": (VALID, "text/plain", {415}),
    "content-type-multipart": (
        b'--b\r\nContent-Disposition: form-data; name="event"\r\n\r\n' + VALID + b"\r\n--b--\r\n",
        "multipart/form-data; boundary=b",
        {415},
    ),
    "content-type-missing": (VALID, None, {415}),
    "content-type-garbage": (VALID, ";;;===\x7f", {415}),
    "content-type-json-charset-latin1-ascii-body": (VALID, "application/json; charset=latin-1", {201}),
    # --- encodings
    "invalid-utf8-in-string": (_event(agent="agent.kim").replace(b"agent.kim", b"agent.\xff\xfekim"), JSON, {400}),
    "latin1-bytes-declared-latin1": (
        _event(agent="agent.kim").replace(b"agent.kim", "agent.José".encode("latin-1")),
        "application/json; charset=latin-1",
        {400},
    ),
    "utf16-body": (VALID.decode().encode("utf-16"), "application/json; charset=utf-16", {400}),
    "utf8-bom": (b"\xef\xbb\xbf" + VALID, JSON, {400, 201}),
    "lone-surrogate-escape": (_event(agent="x").replace(b'"agent": "x"', b'"agent": "\\ud800"'), JSON, {400, 201}),
    # --- timestamps far away
    "year-0001": (_event(occurred_at="0001-01-01T00:00:00Z", answered_at=None, ended_at=None), JSON, {400, 201}),
    "year-0001-east-offset": (
        _event(occurred_at="0001-01-01T00:00:00+05:00", answered_at=None, ended_at=None),
        JSON,
        {400, 201},
    ),
    "year-9999": (_event(occurred_at="9999-12-31T23:59:59Z", answered_at=None, ended_at=None), JSON, {400, 201}),
    "year-9999-west-offset": (
        _event(occurred_at="9999-12-31T23:59:59-05:00", answered_at=None, ended_at=None),
        JSON,
        {400, 201},
    ),
    "epoch-0": (_event(occurred_at="1970-01-01T00:00:00Z", answered_at=None, ended_at=None), JSON, {201}),
    "timestamp-as-number-1e20": (_event(occurred_at=1e20), JSON, {400}),
    "timestamp-as-number-0": (_event(occurred_at=0), JSON, {400}),
    "timestamp-year-10000": (_event(occurred_at="10000-01-01T00:00:00Z"), JSON, {400}),
    "ended-before-answered-far-past": (_event(ended_at="0001-01-01T00:00:00Z"), JSON, {400, 201}),
    # --- absurd identifiers
    "phone-10kb": (_customer([{"kind": "phone", "value": "5" * 10_000}]), JSON, {400, 201}),
    "email-10kb": (_customer([{"kind": "email", "value": "a" * 10_000 + "@example.com"}]), JSON, {400, 201}),
    "1000-identifiers": (
        _customer([{"kind": "phone", "value": f"+1415555{i:04d}"} for i in range(1000)]),
        JSON,
        {400, 201},
    ),
    "1000-identifiers-same-value": (
        _customer([{"kind": "email", "value": "ada@example.com"}] * 1000),
        JSON,
        {400, 201},
    ),
    "external-id-10kb": (_event(external_id="x" * 10_000), JSON, {400}),
    # --- NUL characters
    "nul-escape-in-text": (_event(text="card\x00number"), JSON, {400}),
    "nul-escape-in-identifier": (_customer([{"kind": "phone", "value": "+1415\x005550100"}]), JSON, {400}),
    "nul-escape-in-attribute-key": (_event(attributes={"ti\x00er": "gold"}), JSON, {400}),
    "nul-escape-in-external-id": (_event(external_id="call\x001001"), JSON, {400}),
    "nul-escape-in-enum-value": (_event(channel="fa\x00x"), JSON, {400}),
    "nul-escape-in-unknown-field-name": (_event(**{"x\x00y": 1}), JSON, {400}),
    "nul-escape-in-batch": (b"[" + VALID + b", " + _event(external_id="call-2", agent="a\x00") + b"]", JSON, {400}),
    # --- wrong types
    "number-as-external-id": (_event(external_id=1001), JSON, {400}),
    "string-as-seconds": (_event(queue_wait_seconds="95"), JSON, {400}),
    "huge-int-seconds": (_event(queue_wait_seconds=10**30), JSON, {400}),
    "int-past-int32-transfers": (_event(transfer_count=3_000_000_000), JSON, {400, 201}),
    "int-past-int64-revision": (_event(revision=2**63), JSON, {400, 201}),
    "negative-revision": (_event(revision=-(2**63) - 1), JSON, {400, 201}),
    "float-overflow-1e400": (VALID.replace(b'"queue_wait_seconds": 95', b'"queue_wait_seconds": 1e400'), JSON, {400}),
    "nan-literal": (VALID.replace(b'"queue_wait_seconds": 95', b'"queue_wait_seconds": NaN'), JSON, {400}),
    "bool-as-string": (_event(agent=True), JSON, {400}),
    "object-as-identifiers": (_event(customer={"identifiers": {"kind": "phone"}}), JSON, {400}),
    "array-of-scalars": (b"[1, 2, 3]", JSON, {400}),
    "json-null": (b"null", JSON, {400}),
    "json-string": (b'"hello"', JSON, {400}),
    "json-number": (b"12345678901234567890123456789", JSON, {400}),
    # --- duplicate keys
    "duplicate-key-channel-fax": (_duplicate_key("channel", "fax"), JSON, {400}),
    "duplicate-key-external-id": (_duplicate_key("external_id", "call-2002"), JSON, {201}),
    "duplicate-key-customer": (_duplicate_key("customer", {"identifiers": []}), JSON, {400, 201}),
}


@pytest.mark.parametrize(("body", "content_type", "expect"), list(CASES.values()), ids=list(CASES))
async def test_hostile_native_body(
    client: AsyncTestClient,
    auth: dict[str, str],
    db: asyncpg.Connection,
    body: bytes,
    content_type: str | None,
    expect: set[int],
) -> None:
    headers = dict(auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post("/v1/interactions", content=body, headers=headers)
    problem = await assert_handled(response, db, "native", body, expect=expect)
    if problem is not None:
        assert problem["errors"], "the problem names no field"
        assert await db.fetchval("select count(*) from interaction") == 0


async def test_body_exactly_at_the_limit_is_not_truncated(
    client: AsyncTestClient, auth: dict[str, str], db: asyncpg.Connection
) -> None:
    body = VALID + b" " * (LIMIT - len(VALID))
    response = await client.post("/v1/interactions", content=body, headers={**auth, "Content-Type": JSON})
    await assert_handled(response, db, "native", body, expect={201})
    over = body + b" "
    response = await client.post("/v1/interactions", content=over, headers={**auth, "Content-Type": JSON})
    await assert_handled(response, db, "native", over, expect={413})
