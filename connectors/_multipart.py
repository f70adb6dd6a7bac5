"""`multipart/form-data` bodies (RFC 7578), parsed with the stdlib MIME parser.

The request's Content-Type header is put in front of the body, and the result is read as one MIME message whose
parts are the form fields: `Content-Disposition: form-data; name="…"; filename="…"`, optional `Content-Type` with
a charset. Values stay bytes (the caller decodes them with the charset it knows); files keep their filename and
media type. A body that is not a well-formed multipart message is a `PayloadError`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError, MessageDefect, StartBoundaryNotFoundDefect
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32

from connectors._base import PayloadError

_MAX_PARTS = 1_000


class _FieldHeaders(Compat32):
    """Headers kept as the strings they were (8-bit bytes as surrogates, for `_unescape`) and read by `get_param` &
    co. (RFC 2231 included). The modern policies parse every header into objects: about 0.8 ms per form field."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return _LINE_BREAKS.sub("", value)  # unfolded, as the modern policies do


_LINE_BREAKS = re.compile(r"[\r\n]")


_FIELD_HEADERS = _FieldHeaders()


@dataclass(frozen=True)
class FormPart:
    """One field of a form: its name, raw value, and for a file its filename and media type."""

    name: str
    value: bytes
    filename: str | None = None
    content_type: str | None = None
    charset: str | None = None

    def text(self, charset: str | None = None) -> str:
        """The value as text in `charset` (else the part's own, else UTF-8); undecodable bytes are replaced."""
        for candidate in (charset, self.charset, "utf-8"):
            if candidate:
                try:
                    return self.value.decode(candidate, "replace")
                except LookupError:
                    continue
        return self.value.decode("utf-8", "replace")


def _unescape(value: str | None) -> str | None:
    """Parameter values arrive with 8-bit bytes as surrogates (browsers and platforms send raw UTF-8 filenames), or
    as RFC 2047 encoded words (`=?UTF-8?B?…?=`, which some clients still send)."""
    if value is None:
        return None
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (HeaderParseError, LookupError, ValueError, UnicodeError):
        return text


def _value(part: Message) -> bytes:
    if part.is_multipart():  # a part declared multipart/* or message/*: its bytes as they were
        return part.as_bytes(policy=policy.HTTP).split(b"\r\n\r\n", 1)[-1]
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def parse_form_data(content_type: str, body: bytes) -> list[FormPart]:
    """The fields of a `multipart/form-data` body, in order. `content_type` is the full request header."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type.lower():
        raise PayloadError("the body must be multipart/form-data with a boundary", field="content-type")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=_FIELD_HEADERS).parsebytes(head + body)
    defects: list[MessageDefect] = list(message.defects)
    if not message.is_multipart() or any(isinstance(d, StartBoundaryNotFoundDefect) for d in defects):
        raise PayloadError("the multipart body has no part with the declared boundary", field="$")
    parts: list[FormPart] = []
    for part in message.get_payload():
        if len(parts) >= _MAX_PARTS:
            raise PayloadError(f"the form has more than {_MAX_PARTS} fields", field="$")
        try:
            name = _unescape(part.get_param("name", header="content-disposition"))
            filename = _unescape(part.get_filename())
            charset = part.get_content_charset()
        except (ValueError, TypeError, LookupError):
            raise PayloadError("a form part has a malformed Content-Disposition", field="$") from None
        if part.get_content_disposition() != "form-data" or not name:
            raise PayloadError("every form part needs `Content-Disposition: form-data; name=…`", field="$")
        content_type_header = part.get("content-type")
        parts.append(
            FormPart(
                name=name,
                value=_value(part),
                filename=filename,
                content_type=part.get_content_type() if content_type_header else None,
                charset=charset,
            )
        )
    return parts
