"""One email, whatever platform delivered it: RFC 5322 headers and MIME bodies → an inbound interaction event.

Every email connector fills an `InboundMail` (from a raw MIME message, or from the fields a platform already
parsed) and calls `to_event`. Shared rules:

- Text: RFC 2047 encoded words and every declared charset are decoded; a wrong or unknown declaration falls back
  to UTF-8, then windows-1252, then Latin-1, so decoding never fails.
- Threading: `thread_key` is the root of the conversation — the first id of `References`, else `In-Reply-To`, else
  the message's own `Message-ID` — so all messages of a thread share it, in whatever order they arrive.
- `snippet` is the new part of the text: quoted history ("On … wrote:", `>` lines, Outlook "Original Message" and
  "From:/Sent:" blocks) and the signature (`-- `) are cut.
- Auto-replies (`Auto-Submitted`, `X-Autoreply`, `X-Autorespond`, `Precedence: auto_reply|bulk|junk`, null return
  path) and bounces (`multipart/report; report-type=delivery-status`, MAILER-DAEMON/postmaster, `X-Failed-Recipients`)
  are flagged and never carry a customer identifier; a bounce has status "bounced".
- An SPF or DKIM pass reported by the platform makes the From address `signed` — only when the authenticated
  domain (envelope sender for SPF, `d=` for DKIM) is the From domain or a parent/subdomain of it, when it is known.
- `occurred_at` is the `Date` header; a missing, invalid or far-future date falls back to the receive time."""

from __future__ import annotations

import base64
import binascii
import codecs
import functools
import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.headerregistry import BaseHeader
from email.message import Message
from email.parser import BytesParser
from email.policy import EmailPolicy, default
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser

from schemas import Attachment, CustomerParty, EmailDetails, Endpoint, Identifier, InteractionEvent

Verdict = tuple[str, list[str]]
"""An SPF/DKIM result ("pass", "fail", …) and the domains it vouches for (empty when the platform does not say)."""

# ---- parsing ----------------------------------------------------------------------------------------------------


class _HeadersParsedOnce(EmailPolicy):
    """`email.policy.default`, except that each distinct value of the MIME structure headers is parsed into its
    object once: the stdlib parses a header again on every read, and a multipart message's Content-Type is read a
    dozen times while it is parsed and walked, at about 0.2 ms a time. Header objects are immutable strings, so they
    can be shared. Only short headers that describe the structure are kept: no address, subject, id or file name of
    anyone's mail stays in memory."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        if _kept(name, value):
            return _parsed_header(name, value)
        return super().header_fetch_parse(name, value)


def _kept(name: str, value: str) -> bool:
    return (
        not hasattr(value, "name")  # already an object
        and len(value) <= _CACHED_HEADER_LENGTH
        and name.lower() in _STRUCTURE_HEADERS
        and "name" not in value.lower()  # an attachment's (file)name: someone's data, not structure
    )


_STRUCTURE_HEADERS = frozenset({"content-type", "content-transfer-encoding", "content-disposition", "mime-version"})
_CACHED_HEADER_LENGTH = 998  # RFC 5322's longest line


@functools.lru_cache(maxsize=1024)
def _parsed_header(name: str, value: str) -> BaseHeader:
    return default.header_fetch_parse(name, value)


MIME = _HeadersParsedOnce()
"""The policy messages are parsed with."""

# ---- charsets -------------------------------------------------------------------------------------------------------

_SUPERSETS = {"iso8859-1": "cp1252", "euc_kr": "cp949", "shift_jis": "cp932", "gb2312": "gb18030", "gbk": "gb18030"}
_SINGLE_BYTE = re.compile(r"^(ascii|iso8859-\d+|cp125\d|latin.*)$")
_UNSAFE_CODECS = {"unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined"}


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        info = codecs.lookup(charset.strip().strip("\"'").split("*", 1)[0])
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _UNSAFE_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return _SUPERSETS.get(info.name, info.name)


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes in a declared charset; a wrong declaration (UTF-8 or windows-1252 bytes declared us-ascii, …) or an
    unknown one falls back to UTF-8, then windows-1252, then Latin-1 (which never fails)."""
    codec = _codec(charset)
    if codec and _SINGLE_BYTE.match(codec) and not data.isascii():
        try:  # valid multi-byte UTF-8 is next to impossible in real single-byte text
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    for candidate in (codec, "utf-8", "cp1252"):
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    return data.decode("latin-1")


def _raw_to_str(value: str) -> str:
    """A header value as the parser left it (8-bit bytes as surrogates) → text, word by word."""
    if value.isascii() or not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    return " ".join(decode_text(word) for word in raw.split(b" "))


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, data: str) -> bytes | None:
    if encoding in "bB":
        try:
            return base64.b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError):
            return None
    raw = data.replace("_", " ").encode("utf-8")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), raw)


def decode_header(value: str | None) -> str:
    """RFC 2047 encoded words (and raw 8-bit text) → text; whitespace between adjacent encoded words is dropped and
    their bytes joined when they share a charset (some mailers split a character across two words)."""
    if not value:
        return ""
    text = _raw_to_str(re.sub(r"\r?\n[ \t]+", " ", value))
    out: list[str] = []
    pending: tuple[str, bytes] | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        data = _word_bytes(match[2], match[3])
        if data is None:
            continue
        if pending and not between.strip() and pending[0] == match[1].lower():
            pending = (pending[0], pending[1] + data)
        else:
            if pending:
                out.append(decode_text(pending[1], pending[0]))
            if pending is None or between.strip():
                out.append(between)
            pending = (match[1].lower(), data)
        pos = match.end()
    if pending:
        out.append(decode_text(pending[1], pending[0]))
    out.append(text[pos:])
    return "".join(out).strip()


# ---- headers --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Headers:
    """Header (name, raw value) pairs in message order; names compare case-insensitively."""

    items: tuple[tuple[str, str], ...] = ()

    def all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.items if key.lower() == lowered]

    def raw(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def get(self, name: str) -> str | None:
        """The first value, decoded; None when absent or blank."""
        return decode_header(self.raw(name)) or None


def header_block(text: str) -> Headers:
    """A raw header block (SendGrid's `headers` field) → Headers."""
    message = BytesParser(policy=MIME).parsebytes(text.encode("utf-8", "surrogateescape"), headersonly=True)
    return Headers(tuple((k, str(v)) for k, v in message.raw_items()))


def addresses(value: str | None) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header; names decoded after the list is split."""
    if not value:
        return []
    try:
        pairs = getaddresses([_raw_to_str(value.replace("\r", " ").replace("\n", " "))])
    except (ValueError, TypeError, IndexError):
        return []
    return [(decode_header(name), addr.strip()) for name, addr in pairs if "@" in addr]


def message_ids(value: str | None) -> list[str]:
    """The ids of a Message-ID / In-Reply-To / References header, without angle brackets, folded or not."""
    if not value:
        return []
    value = _raw_to_str(value)
    ids = re.findall(r"<\s*([^<>\s]+?)\s*>", value)
    return ids or [token for token in re.split(r"[\s,]+", value) if "@" in token]


def parse_date(value: str | None, received_at: datetime) -> datetime:
    """The `Date` header as an aware datetime; missing, invalid or more than a day ahead → `received_at`."""
    if value:
        text = re.sub(r"([+-]\d\d):(\d\d)\s*$", r"\1\2", " ".join(value.split()))
        try:
            when = parsedate_to_datetime(text)
        except (ValueError, TypeError, IndexError, OverflowError):
            try:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            if datetime(1990, 1, 1, tzinfo=UTC) <= when <= received_at + timedelta(days=1):
                return when
    return received_at


def domain_of(address: str | None) -> str:
    return address.rsplit("@", 1)[1].strip().strip(">").lower() if address and "@" in address else ""


def aligned(domain: str, from_domain: str) -> bool:
    domain, from_domain = domain.lower().strip("."), from_domain.lower().strip(".")
    if not domain or not from_domain:
        return False
    return domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)


def dkim_domains(headers: Headers) -> list[str]:
    """The signing domains (`d=`) of the message's DKIM-Signature headers."""
    return [m[1].lower() for v in headers.all("DKIM-Signature") if (m := re.search(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", v))]


def verdict(results: list[tuple[str, str]]) -> Verdict | None:
    """One verdict from several (result, domain) checks of a method: the passes if any, else the first result."""
    if not results:
        return None
    passed = [domain for result, domain in results if result == "pass"]
    if passed:
        return "pass", [d for d in passed if d] if all(passed) else []
    return results[0][0], []


def authentication_results(headers: Headers, authserv_id: str | None) -> tuple[Verdict | None, Verdict | None]:
    """SPF and DKIM from the `Authentication-Results` headers written by the trusted server `authserv_id` only (a
    sender can add such headers too). Returns (spf, dkim)."""
    if not authserv_id:
        return None, None
    found: dict[str, list[tuple[str, str]]] = {"spf": [], "dkim": []}
    for value in headers.all("Authentication-Results"):
        text = re.sub(r"\([^()]*\)", " ", _raw_to_str(value).replace("\r", " ").replace("\n", " "))
        server, _, results = text.partition(";")
        if (server.split() or [""])[0].lower() != authserv_id.strip().lower():
            continue
        for method, result, props in re.findall(r"\b(spf|dkim)\s*=\s*([A-Za-z]+)([^;]*)", results, re.I):
            key = "smtp\\.mailfrom" if method.lower() == "spf" else "header\\.[di]"
            domain = re.search(key + r"\s*=\s*(\S+)", props)
            found[method.lower()].append((result.lower(), domain[1].rsplit("@", 1)[-1].lower() if domain else ""))
    return verdict(found["spf"]), verdict(found["dkim"])


# ---- bodies ---------------------------------------------------------------------------------------------------------


class _HtmlText(HTMLParser):
    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = [(0, "")]
        self.quote_depth = 0
        self.skip = 0

    def _newline(self) -> None:
        self.lines.append((self.quote_depth, ""))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip += 1
        elif tag == "blockquote":
            self.quote_depth += 1
        if tag in self._BLOCKS:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag == "blockquote":
            self.quote_depth = max(0, self.quote_depth - 1)
        if tag in self._BLOCKS:
            self._newline()

    def handle_data(self, data: str) -> None:
        if not self.skip:
            depth, text = self.lines[-1]
            self.lines[-1] = (depth, text + re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [("> " * depth + text.strip()) if text.strip() else "" for depth, text in self.lines]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    """Readable text of an HTML body; quoted `<blockquote>` content keeps a `>` prefix."""
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        pass
    return parser.text()


_ON_WROTE = re.compile(
    r"^\s*(On\b.{0,300}\bwrote|Le\b.{0,300}\ba écrit|Am\b.{0,300}\bschrieb\b.{0,200}|El\b.{0,300}\bescribió"
    r"|Em\b.{0,300}\bescreveu|Il\b.{0,300}\bha scritto|Op\b.{0,300}\bschreef\b.{0,200})\s*:\s*$",
    re.I | re.S,
)
_QUOTE_OPENERS = frozenset({"on", "le", "am", "el", "em", "il", "op"})
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}", re.I)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De)\s*:\*?\s", re.I)
_OUTLOOK_NEXT = re.compile(r"^\s*\*?(Sent|Date|Gesendet|Envoyé|To)\s*:", re.I)
_SIGN_OFF = re.compile(r"^(--\s*|_{10,}|Sent from my \w+.*|Get Outlook for \w+.*)$", re.I)


def _quote_starts(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _ORIGINAL.match(line) or _SIGN_OFF.match(line.rstrip("\r")):
        return True
    if _OUTLOOK_FROM.match(line) and any(_OUTLOOK_NEXT.match(n) for n in lines[i + 1 : i + 4]):
        return True
    head = line.lstrip()
    if head.split(" ", 1)[0].lower() in _QUOTE_OPENERS:
        return any(_ON_WROTE.match(" ".join(lines[i : i + n])) for n in (1, 2, 3))
    return False


def reply_snippet(text: str | None, limit: int = 1000) -> str | None:
    """The new part of a reply: no quoted history, no signature; at most `limit` characters."""
    if not text:
        return None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _quote_starts(lines, i):
            break
        if not line.lstrip().startswith(">"):
            kept.append(line.rstrip())
    snippet = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    if len(snippet) > limit:
        snippet = snippet[: limit - 1].rstrip() + "…"
    return snippet or None


@dataclass
class MimeParts:
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


_NOT_ATTACHMENTS = {"message/delivery-status", "text/rfc822-headers", "message/disposition-notification"}


def _leaves(part: Message, depth: int = 0) -> list[Message]:
    if depth > 30:
        return []
    if part.get_content_maintype() == "message" or not part.is_multipart():
        return [part]  # a multipart/* whose boundary was never found has its whole body as text
    found = [leaf for sub in part.get_payload() for leaf in _leaves(sub, depth + 1)]
    boundary = part.get_boundary()
    epilogue = part.epilogue or ""
    if boundary and f"--{boundary}" in epilogue:  # an inner part reused the outer boundary and closed it early
        for chunk in re.split(rf"(?m)^--{re.escape(boundary)}(?:--)?[ \t]*\r?$", epilogue)[1:]:
            if chunk.strip():
                raw = chunk.lstrip("\r\n").encode("utf-8", "surrogateescape")
                found.extend(_leaves(BytesParser(policy=MIME).parsebytes(raw), depth + 1))
    return found


def _size(part: Message) -> int | None:
    try:
        payload = part.get_payload(decode=True)
        if payload is None and part.is_multipart():
            return len(part.get_payload(0).as_bytes())
        return None if payload is None else len(payload)
    except Exception:  # a broken part only loses its size
        return None


def mime_parts(message: Message) -> MimeParts:
    """Body text, HTML and attachment metadata of a parsed MIME message, tolerant of broken structure."""
    found = MimeParts()
    texts: list[str] = []
    for leaf in _leaves(message):
        ctype = _raw_to_str(leaf.get_content_type())
        try:
            disposition = leaf.get_content_disposition()
            filename = leaf.get_filename()
        except Exception:  # malformed parameters
            disposition, filename = None, None
        if ctype.startswith("multipart/"):
            ctype = "text/plain"
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            try:
                body = decode_text(leaf.get_payload(decode=True) or b"", leaf.get_content_charset())
            except Exception:  # an undecodable part is skipped
                continue
            if ctype == "text/plain" and body.strip():
                texts.append(body)
            elif found.html is None:
                found.html = body
        elif ctype not in _NOT_ATTACHMENTS:
            name = decode_header(filename)[:512] or None
            found.attachments.append(Attachment(filename=name, content_type=ctype[:255], size_bytes=_size(leaf)))
    found.text = "\n".join(t.rstrip("\n") for t in texts) if texts else None
    return found


def parse_mime(raw: bytes) -> tuple[Headers, MimeParts]:
    """A raw RFC 5322 message → its headers and parts. Never raises for bad input (the stdlib parser records defects
    instead); the caller decides whether what came out is a message at all."""
    message = BytesParser(policy=MIME).parsebytes(raw)
    headers = Headers(tuple((name, str(value)) for name, value in message.raw_items()))
    return headers, mime_parts(message)


# ---- the event ------------------------------------------------------------------------------------------------------


@dataclass
class InboundMail:
    """What a platform delivered, before normalization. Unset fields are read from `headers`."""

    source: str
    headers: Headers = field(default_factory=Headers)
    platform_id: str | None = None
    from_name: str | None = None
    from_address: str | None = None
    recipient: str | None = None
    cc: list[str] | None = None
    subject: str | None = None
    date: str | None = None
    text: str | None = None
    html: str | None = None
    reply_text: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    envelope_sender: str | None = None
    """The SMTP MAIL FROM; "" is the null sender of bounces and auto-replies, None when the platform does not say."""
    spf: Verdict | None = None
    dkim: Verdict | None = None
    fingerprint: bytes = b""
    attributes: dict[str, str] = field(default_factory=dict)


def _bounded_id(value: str) -> str:
    return value if len(value) <= 512 else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def _is_auto_submitted(h: Headers, envelope_sender: str | None) -> bool:
    auto = (h.get("Auto-Submitted") or "no").split(";")[0].strip().lower() != "no"
    flagged = any(
        h.raw(name) is not None and (h.get(name) or "").lower() not in ("no", "false")
        for name in ("X-Autoreply", "X-Autorespond")
    )
    precedence = (h.get("Precedence") or "").strip().lower() in ("auto_reply", "bulk", "junk")
    null_sender = (h.get("Return-Path") or "").strip() == "<>" or envelope_sender == ""
    return auto or flagged or precedence or null_sender


def _is_bounce(h: Headers, from_address: str) -> bool:
    ctype = (h.get("Content-Type") or "").lower()
    report = "multipart/report" in ctype and re.search(r"report-type\s*=\s*\"?delivery-status", ctype) is not None
    local = from_address.split("@", 1)[0].lower()
    return report or local.startswith("mailer-daemon") or local == "postmaster" or bool(h.raw("X-Failed-Recipients"))


def _passes(verdict: Verdict | None, from_domain: str) -> bool:
    if verdict is None or verdict[0] != "pass":
        return False
    return not verdict[1] or any(aligned(domain, from_domain) for domain in verdict[1])


def to_event(mail: InboundMail, received_at: datetime) -> InteractionEvent:
    """The inbound interaction event of one email."""
    h = mail.headers
    senders = addresses(h.raw("From"))
    from_name = mail.from_name if mail.from_name is not None else (senders[0][0] if senders else "")
    from_address = (mail.from_address if mail.from_address is not None else (senders[0][1] if senders else "")).strip()
    own_ids = message_ids(h.raw("Message-ID"))
    in_reply_to = message_ids(h.raw("In-Reply-To"))
    references = message_ids(h.raw("References"))
    root = (references or in_reply_to or own_ids or [None])[0]
    external = own_ids[0] if own_ids else None
    if mail.platform_id:
        external = mail.platform_id
    if not external:
        external = "sha256:" + hashlib.sha256(mail.fingerprint or repr(h.items).encode()).hexdigest()
    bounce = _is_bounce(h, from_address)
    auto = bounce or _is_auto_submitted(h, mail.envelope_sender)
    from_domain = domain_of(from_address)
    signed = _passes(mail.spf, from_domain) or _passes(mail.dkim, from_domain)
    customer = CustomerParty()
    attributes = dict(mail.attributes)
    if auto:
        if from_address:
            attributes["from"] = from_address[:4096]
        if not bounce and from_name:
            customer = CustomerParty(display_name=from_name[:256])
    elif "@" in from_address:
        verification = "signed" if signed else "unverified"
        identifier = Identifier(kind="email", value=from_address[:320], verification=verification)
        customer = CustomerParty(identifiers=[identifier], display_name=from_name[:256] or None)
    envelope_to = h.raw("X-Original-To") or h.raw("Delivered-To") or h.raw("To")
    recipient = mail.recipient or next((a for _, a in addresses(envelope_to)), None)
    cc = mail.cc if mail.cc is not None else [a for _, a in addresses(", ".join(h.all("Cc")))]
    if len(references) > 256:
        references = references[:1] + references[-255:]
    text = mail.text if mail.text and mail.text.strip() else (html_to_text(mail.html) if mail.html else None)
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip() if text else None
    subject = mail.subject if mail.subject is not None else h.get("Subject")
    details = EmailDetails(
        message_id=own_ids[0][:998] if own_ids else None,
        in_reply_to=in_reply_to[0][:998] if in_reply_to else None,
        references=[r[:998] for r in references],
        cc=[a[:320] for a in cc[:256]],
        auto_submitted=auto,
        bounce=bounce,
        spf=mail.spf[0][:32] if mail.spf else None,
        dkim=mail.dkim[0][:32] if mail.dkim else None,
    )
    return InteractionEvent(
        source=mail.source,
        external_id=_bounded_id(external),
        channel="email",
        direction="inbound",
        occurred_at=parse_date(mail.date if mail.date is not None else h.raw("Date"), received_at),
        status="bounced" if bounce else "received",
        customer=customer,
        endpoint=Endpoint(kind="email", value=recipient.strip()[:320]) if recipient and recipient.strip() else None,
        thread_key=_bounded_id(root) if root else None,
        subject=subject[:998] if subject else None,
        text=text[:1_000_000] if text else None,
        snippet=reply_snippet(mail.reply_text) or reply_snippet(text),
        attachments=mail.attachments[:100],
        attributes={k: v[:4096] for k, v in list(attributes.items())[:100] if v},
        details=details,
    )
