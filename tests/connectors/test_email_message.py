"""The shared email logic and the raw-MIME connector (`email-mime`): charsets and encoded words, broken MIME,
dates, threading, snippets, auto-replies and bounces, SPF/DKIM trust, verification and every rejection."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from connectors._base import ConnectorSettings, PayloadError, SignatureError, WebhookRequest
from connectors._multipart import parse_form_data
from connectors.email._message import (
    Headers,
    addresses,
    authentication_results,
    decode_header,
    decode_text,
    html_to_text,
    message_ids,
    parse_date,
    reply_snippet,
)
from connectors.email.mime import body_signature, connector
from connectors.registry import get_connector
from schemas import Attachment, CustomerParty, EmailDetails, Endpoint, Identifier, InteractionEvent

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email-mime"
URL = "https://unify.example.com/v1/webhooks/email-mime"
RECEIVED = datetime(2024, 6, 12, 9, 0, tzinfo=UTC)
TRUSTED = ConnectorSettings(basic_auth="mta:pipe-secret", options={"trusted_authserv_id": "mx.acme.test"})
PLAIN = ConnectorSettings(basic_auth="mta:pipe-secret")


def request(body: bytes, content_type: str = "message/rfc822", **headers: str) -> WebhookRequest:
    return WebhookRequest(
        method="POST",
        url=URL,
        headers={"content-type": content_type, **headers},
        body=body,
        received_at=RECEIVED,
    )


def parse(name: str, settings: ConnectorSettings = PLAIN) -> InteractionEvent:
    [event] = connector.parse(request((FIXTURES / name).read_bytes()), settings).events
    return event


def details(event: InteractionEvent) -> EmailDetails:
    assert isinstance(event.details, EmailDetails)
    return event.details


def test_registered() -> None:
    assert get_connector("email-mime") is connector
    assert (connector.name, connector.channel) == ("email-mime", "email")


# --- charsets and encoded words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("=?UTF-8?B?UmU6IENhZsOpIG9yZGVy?=", "Re: Café order"),
        ("=?ISO-8859-1?Q?R=E9clamation_:_caf=E9?=", "Réclamation : café"),
        ("=?utf-8?q?na=C3=AFve?= =?utf-8?q?_caf=C3=A9?=", "naïve café"),  # whitespace between words dropped
        ("=?UTF-8?B?4oKs?= =?ISO-8859-1?Q?=E9?=", "€é"),
        ("=?UTF-8?B?8J+Y?= =?UTF-8?B?gA==?=", "😀"),  # one character split over two words
        ("Re: =?Shift_JIS?B?lHqRl4LJgsKCooLE?= (2)", "Re: 配送について (2)"),
        ("=?x-unknown?Q?caf=E9?=", "café"),  # unknown charset: fallback
        ("=?UTF-8?B?!!!not base64?=", "=?UTF-8?B?!!!not base64?="),
        ("=?UTF-8*en?Q?hello?=", "hello"),  # RFC 2231 language suffix
        ("plain\r\n folded", "plain folded"),
    ],
)
def test_encoded_words(raw: str, text: str) -> None:
    assert decode_header(raw) == text


@pytest.mark.parametrize(
    ("data", "declared", "text"),
    [
        ("café".encode("iso-8859-1"), "iso-8859-1", "café"),
        ("“€100”".encode("cp1252"), "windows-1252", "“€100”"),
        ("“€100”".encode("cp1252"), "iso-8859-1", "“€100”"),  # Latin-1 labels read as windows-1252
        ("配送".encode("shift_jis"), "shift_jis", "配送"),
        ("crème".encode(), "us-ascii", "crème"),  # declared ASCII, really UTF-8
        ("crème".encode("latin-1"), "us-ascii", "crème"),  # declared ASCII, really Latin-1
        ("crème".encode(), "iso-8859-1", "crème"),  # declared Latin-1, really UTF-8
        ("crème".encode("latin-1"), "utf-8", "crème"),  # declared UTF-8, really Latin-1
        ("crème".encode(), "no-such-charset", "crème"),
        ("crème".encode(), "rot13", "crème"),  # not a text encoding
        (b"\x81\x8d", "utf-8", "\x81\x8d"),  # undefined even in windows-1252: Latin-1 never fails
        (b"", None, ""),
    ],
)
def test_charset_fallbacks(data: bytes, declared: str | None, text: str) -> None:
    assert decode_text(data, declared) == text


def test_encoded_word_subjects_and_names() -> None:
    utf8 = parse("encoded-words-utf8.eml")
    assert utf8.subject == "配送について（注文番号 10423）"
    assert utf8.customer.display_name == "山田太郎"
    assert utf8.text == "配送について質問があります。"
    latin1 = parse("encoded-words-latin1.eml")
    assert latin1.subject == "Réclamation : café défectueux"
    assert latin1.customer.display_name == "André Müller"


def test_non_utf8_bodies() -> None:
    assert "la machine à café ne chauffe plus. Grüße aus München." in (parse("encoded-words-latin1.eml").text or "")
    assert parse("windows-1252.eml").text == "Hi – the invoice says “€120” but I was quoted €100.\n\nRegards,\nSean"
    shift_jis = parse("shift-jis.eml")
    assert (shift_jis.subject, shift_jis.text) == ("配送について", "注文番号10423の配送はいつですか？")
    assert shift_jis.customer.display_name == "山田 太郎"  # ISO-2022-JP encoded word


def test_wrong_charset_declaration_falls_back() -> None:
    event = parse("wrong-charset.eml")
    assert event.text == "The crème brûlée set is missing — please check."  # declared us-ascii, UTF-8 bytes
    assert event.subject == "Café order"  # raw 8-bit Latin-1 in a header
    assert event.customer.display_name == "Zoë Smith"


# --- broken MIME and dates --------------------------------------------------------------------------------------


def test_inner_part_reusing_the_outer_boundary() -> None:
    event = parse("boundary-reuse.eml")
    assert event.text == "Please find my warranty card attached."
    assert event.attachments == [Attachment(filename="warranty.pdf", content_type="application/pdf", size_bytes=78)]


def test_missing_blank_line_after_headers() -> None:
    event = parse("no-blank-line.eml")
    assert (event.subject, event.external_id) == ("Scan to email", "no-blank-line.4471@printer.example.org")
    assert event.text == "This scan was sent from the office printer.\nPages: 2"


def test_invalid_date_falls_back_to_the_receive_time() -> None:
    assert parse("invalid-date.eml").occurred_at == RECEIVED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Fri, 1 Aug 2014 16:45:32 -04:00", datetime(2014, 8, 1, 20, 45, 32, tzinfo=UTC)),  # Postmark style
        ("Mon, 15 Apr 2013 17:20:13 -0700 (PDT)", datetime(2013, 4, 16, 0, 20, 13, tzinfo=UTC)),
        ("Mon, 3 Jun 2024 10:00:00 -0000", datetime(2024, 6, 3, 10, tzinfo=UTC)),  # zone unknown: UTC
        ("Mon, 3 Jun\r\n 2024 10:00:00 +0000", datetime(2024, 6, 3, 10, tzinfo=UTC)),  # folded
        ("2024-06-03T10:00:00Z", datetime(2024, 6, 3, 10, tzinfo=UTC)),
        ("Thu, 31 Feb 2024 10:00:00 +0000", RECEIVED),
        ("Mon, 3 Jun 99999 10:00:00 +0000", RECEIVED),
        ("Sat, 1 Jan 2039 00:00:00 +0000", RECEIVED),  # far in the future
        ("Thu, 1 Jan 1970 00:00:00 +0000", RECEIVED),
        ("", RECEIVED),
        (None, RECEIVED),
    ],
)
def test_dates(value: str | None, expected: datetime) -> None:
    assert parse_date(value, RECEIVED) == expected


def test_message_ids_and_addresses() -> None:
    folded = "<a@x.example>\r\n <b@y.example>\t<c@z.example>"
    assert message_ids(folded) == ["a@x.example", "b@y.example", "c@z.example"]
    assert message_ids("a@x.example b@y.example") == ["a@x.example", "b@y.example"]  # brackets missing
    assert message_ids("") == message_ids(None) == []
    assert addresses('"=?UTF-8?Q?M=C3=BCller=2C_Hans?=" <h@x.example>, "Doe, Jane" <j@y.example>, bad') == [
        ("Müller, Hans", "h@x.example"),
        ("Doe, Jane", "j@y.example"),
    ]


# --- normalized event, threading, snippets ----------------------------------------------------------------------


def test_normalized_message() -> None:
    event = parse("thread-3-reply.eml")
    assert event == InteractionEvent(
        source="email-mime",
        external_id="CAJt9xK3q1d=Ff0oW8mQ+thanks@mail.example.net",
        channel="email",
        direction="inbound",
        occurred_at=datetime(2024, 6, 3, 14, 40, 12, tzinfo=UTC),
        status="received",
        customer=CustomerParty(
            identifiers=[Identifier(kind="email", value="maria.gonzalez@example.net")],
            display_name="María González",
        ),
        endpoint=Endpoint(kind="email", value="support@acme.test"),
        thread_key="CAJt9xK3q1d=Ff0oW8mQ+question@mail.example.net",
        subject="Re: Order #10422 arrived damaged",
        text=event.text,
        snippet="Perfect, thank you! I will keep the broken one until the courier comes.",
        details=EmailDetails(
            message_id="CAJt9xK3q1d=Ff0oW8mQ+thanks@mail.example.net",
            in_reply_to="20240603140233.4411.ticket-10422@acme.test",
            references=[
                "CAJt9xK3q1d=Ff0oW8mQ+question@mail.example.net",
                "CAJt9xK3q1d=Ff0oW8mQ+photos@mail.example.net",
                "20240603140233.4411.ticket-10422@acme.test",
            ],
            cc=["jose.gonzalez@example.net"],
        ),
    )
    assert event.text is not None and event.text.startswith("Perfect, thank you!") and "> Hi María," in event.text


def test_three_message_thread_shares_one_key_in_any_order() -> None:
    names = ["thread-3-reply.eml", "thread-1-question.eml", "thread-2-followup.eml"]
    events = [parse(name) for name in names]
    assert {e.thread_key for e in events} == {"CAJt9xK3q1d=Ff0oW8mQ+question@mail.example.net"}
    assert len({e.external_id for e in events}) == 3
    followup = events[2]
    assert followup.snippet == "Here are photos of the box."
    assert followup.attachments == [Attachment(filename="box.jpg", content_type="image/jpeg", size_bytes=160)]


def test_outlook_reply_and_encoded_attachment_name() -> None:
    event = parse("outlook-reply.eml")
    assert event.snippet == "Yes, Thursday morning works for the engineer visit.\n\nKind regards\nPriya"
    assert "-----Original Message-----" in (event.text or "")
    assert [a.filename for a in event.attachments] == ["serial-numbers.xlsx"]
    assert event.thread_key == "ticket-5540.reply@acme.test"


@pytest.mark.parametrize(
    ("text", "snippet"),
    [
        ("Thanks!\n\nOn Mon, Jun 3, 2024 at 10:00 AM Jane Doe <\njane@example.com> wrote:\n> hi", "Thanks!"),
        ("Thanks!\n> quoted\nMore.\n", "Thanks!\nMore."),
        ("Ok\n\nFrom: Acme <support@acme.test>\nSent: Tuesday, June 11, 2024 12:40 PM\nTo: me\n\nold", "Ok"),
        ("Ok\n________________________________\nFrom: Acme\nSent: today\n", "Ok"),
        ("Ok\n-----Original Message-----\nold", "Ok"),
        ("Merci\n\nLe lun. 3 juin 2024 à 10:00, Acme <support@acme.test> a écrit :\n> old", "Merci"),
        ("Danke\n\nAm 12.06.2024 um 18:10 schrieb Acme <s@acme.test>:\n> old", "Danke"),
        ("See you\n-- \nJane Doe\nACME", "See you"),
        ("See you\n\nSent from my iPhone", "See you"),
        ("From: the team we met, all good.", "From: the team we met, all good."),
        ("> only quoted", None),
        ("", None),
        ("x" * 1500, "x" * 999 + "…"),
    ],
)
def test_snippet_strips_history_and_signature(text: str, snippet: str | None) -> None:
    assert reply_snippet(text) == snippet


def test_html_only_body_becomes_text_without_the_quote_in_the_snippet() -> None:
    html = (
        "<html><head><style>p{}</style></head><body><p>Yes &amp; thanks</p><div>Jo</div>"
        "<blockquote>old <b>stuff</b></blockquote><script>x()</script></body></html>"
    )
    assert html_to_text(html) == "Yes & thanks\n\nJo\n\n> old stuff"
    raw = b"From: jo@example.org\r\nMessage-ID: <h@example.org>\r\nContent-Type: text/html\r\n\r\n" + html.encode()
    [event] = connector.parse(request(raw), PLAIN).events
    assert (event.text, event.snippet) == ("Yes & thanks\n\nJo\n\n> old stuff", "Yes & thanks\n\nJo")


# --- auto-replies and bounces -----------------------------------------------------------------------------------


def test_bounce_from_mailer_daemon() -> None:
    event = parse("bounce.eml")
    assert event.status == "bounced"
    assert details(event).bounce and details(event).auto_submitted
    assert event.customer == CustomerParty()  # never a customer contact
    assert event.attributes == {"from": "MAILER-DAEMON@mx.acme.test"}
    assert event.attachments == [Attachment(content_type="message/rfc822", size_bytes=201)]  # not the report part
    assert "Recipient address rejected" in (event.text or "")


def test_auto_reply() -> None:
    event = parse("auto-reply.eml")
    assert (event.status, details(event).auto_submitted, details(event).bounce) == ("received", True, False)
    assert event.customer == CustomerParty(display_name="Kim Park")  # no identifier: never links anyone
    assert event.thread_key == "ticket-5530.reply@acme.test"


@pytest.mark.parametrize(
    ("header", "auto", "bounce"),
    [
        ("Auto-Submitted: auto-generated", True, False),
        ("Auto-Submitted: no", False, False),
        ("X-Autoreply: yes", True, False),
        ("X-Autorespond: Vacation", True, False),
        ("Precedence: bulk", True, False),
        ("Precedence: junk", True, False),
        ("Precedence: list", False, False),
        ("Return-Path: <>", True, False),
        ("X-Failed-Recipients: a@example.com", True, True),
        ("Content-Type: multipart/report; report-type=delivery-status; boundary=x", True, True),
        ("Content-Type: multipart/report; report-type=disposition-notification; boundary=x", False, False),
    ],
)
def test_auto_submitted_and_bounce_markers(header: str, auto: bool, bounce: bool) -> None:
    raw = f"From: Kim <kim@example.com>\r\nMessage-ID: <m@example.com>\r\n{header}\r\n\r\nHello\r\n".encode()
    [event] = connector.parse(request(raw), PLAIN).events
    assert (details(event).auto_submitted, details(event).bounce) == (auto, bounce)
    assert bool(event.customer.identifiers) is not auto
    assert event.status == ("bounced" if bounce else "received")


@pytest.mark.parametrize("sender", ["postmaster@example.com", "Mailer-Daemon@example.com"])
def test_postmaster_and_mailer_daemon_are_bounces(sender: str) -> None:
    raw = f"From: {sender}\r\nMessage-ID: <b@example.com>\r\n\r\nfailed\r\n".encode()
    [event] = connector.parse(request(raw), PLAIN).events
    assert details(event).bounce and event.customer == CustomerParty()


# --- SPF / DKIM trust -------------------------------------------------------------------------------------------


def test_authentication_results_of_the_trusted_server_make_the_sender_signed() -> None:
    event = parse("thread-1-question.eml", TRUSTED)
    assert event.customer.identifiers == [
        Identifier(kind="email", value="maria.gonzalez@example.net", verification="signed")
    ]
    assert (details(event).spf, details(event).dkim) == ("pass", "pass")
    unconfigured = parse("thread-1-question.eml")
    assert unconfigured.customer.identifiers[0].verification == "unverified"
    assert (details(unconfigured).spf, details(unconfigured).dkim) == (None, None)


def _auth(value: str, sender: str = "jo@example.org") -> InteractionEvent:
    raw = f"Authentication-Results: {value}\r\nFrom: {sender}\r\nMessage-ID: <a@b.c>\r\n\r\nhi\r\n".encode()
    [event] = connector.parse(request(raw), TRUSTED).events
    return event


@pytest.mark.parametrize(
    ("value", "verification"),
    [
        ("mx.acme.test; dkim=pass header.d=example.org", "signed"),
        ("mx.acme.test; dkim=pass header.i=@mail.example.org", "signed"),  # subdomain aligns
        ("mx.acme.test 1; spf=pass smtp.mailfrom=bounce@example.org", "signed"),  # with a version
        ("mx.acme.test; dkim=pass header.d=attacker.example", "unverified"),  # not the From domain
        ("mx.acme.test; spf=pass smtp.mailfrom=attacker.example", "unverified"),
        ("mx.acme.test; dkim=fail header.d=example.org; spf=softfail smtp.mailfrom=example.org", "unverified"),
        ("mx.acme.test; dkim=none (dkim=pass in a comment) header.d=example.org", "unverified"),
        ("evil.example; dkim=pass header.d=example.org", "unverified"),  # another server wrote it
        ("mx.acme.test.evil.example; dkim=pass header.d=example.org", "unverified"),
    ],
)
def test_authentication_results_trust(value: str, verification: str) -> None:
    assert _auth(value).customer.identifiers[0].verification == verification


def test_several_dkim_results_any_aligned_pass_counts() -> None:
    headers = Headers(
        (
            ("Authentication-Results", "mx.acme.test; dkim=pass header.d=esp.example; dkim=pass header.d=example.org"),
            ("Authentication-Results", "mx.acme.test; spf=fail smtp.mailfrom=esp.example"),
        )
    )
    spf, dkim = authentication_results(headers, "MX.ACME.TEST")
    assert spf == ("fail", [])
    assert dkim == ("pass", ["esp.example", "example.org"])
    assert authentication_results(headers, None) == (None, None)


# --- verification -----------------------------------------------------------------------------------------------


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_basic_auth() -> None:
    body = (FIXTURES / "thread-1-question.eml").read_bytes()
    connector.verify(request(body, authorization=_basic("mta:pipe-secret")), PLAIN)
    with pytest.raises(SignatureError) as wrong:
        connector.verify(request(body, authorization=_basic("mta:guess")), PLAIN)
    assert wrong.value.field == "authorization"
    with pytest.raises(SignatureError):
        connector.verify(request(body), PLAIN)


def test_hmac_signature_header() -> None:
    body = (FIXTURES / "thread-1-question.eml").read_bytes()
    settings = ConnectorSettings(secret="s3cret")
    signature = body_signature("s3cret", body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    connector.verify(request(body, **{"x-unify-signature": signature}), settings)
    connector.verify(request(body, **{"x-unify-signature": signature.upper().replace("SHA256", "sha256")}), settings)
    for presented in (body_signature("other", body), "sha256=", signature[7:]):
        with pytest.raises(SignatureError) as bad:
            connector.verify(request(body, **{"x-unify-signature": presented}), settings)
        assert bad.value.field == "x-unify-signature"
    with pytest.raises(SignatureError, match="missing"):
        connector.verify(request(body), settings)
    with pytest.raises(SignatureError):  # the body was changed after signing
        connector.verify(request(body + b"x", **{"x-unify-signature": signature}), settings)


def test_both_credentials_configured_are_both_required() -> None:
    body = b"From: a@example.org\r\n\r\nhi"
    settings = ConnectorSettings(secret="s3cret", basic_auth="mta:pipe-secret")
    both = {"authorization": _basic("mta:pipe-secret"), "x-unify-signature": body_signature("s3cret", body)}
    connector.verify(request(body, **both), settings)
    with pytest.raises(SignatureError):
        connector.verify(request(body, authorization=both["authorization"]), settings)
    with pytest.raises(SignatureError, match="neither"):
        connector.verify(request(body, **both), ConnectorSettings())


# --- rejections and robustness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"", "message/rfc822", "$"),
        (b"  \r\n", "message/rfc822", "$"),
        (b'{"from": "a@example.org", "text": "hi"}', "message/rfc822", "$"),
        (b"just some words\r\nand more", "text/plain", "$"),
        (b"From: a@example.org\r\n\r\nhi", "application/json", "content-type"),
        (b"From: a@example.org\r\n\r\nhi", "multipart/form-data", "content-type"),
    ],
)
def test_rejections_name_the_field(body: bytes, content_type: str, field: str) -> None:
    with pytest.raises(PayloadError) as rejected:
        connector.parse(request(body, content_type), PLAIN)
    assert rejected.value.field == field


@pytest.mark.parametrize("content_type", ["message/rfc822", "application/octet-stream", "text/plain", ""])
def test_accepted_media_types(content_type: str) -> None:
    [event] = connector.parse(request(b"From: a@example.org\r\n\r\nhi", content_type), PLAIN).events
    assert event.text == "hi"
    assert event.external_id.startswith("sha256:")  # no Message-ID: the bytes make the key


def test_garbage_never_escapes_as_another_exception() -> None:
    rng = random.Random(5322)
    fixtures = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]
    samples = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))) for _ in range(200)]
    for source in fixtures:  # truncated and corrupted real messages
        for _ in range(15):
            cut = rng.randrange(len(source))
            mutated = bytearray(source[:cut])
            for _ in range(rng.randrange(1, 8)):
                if mutated:
                    mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            samples.append(bytes(mutated))
    samples += [
        b"From: <>\r\nMessage-ID: <>\r\nReferences: <<<>>>\r\nDate: \r\n\r\n",
        b"Subject: =?utf-8?b?====?= =?\r\nContent-Type: multipart/mixed\r\n\r\n--\r\n",
        b'Content-Type: multipart/mixed; boundary=""\r\nFrom: a@b.c\r\n\r\n--\r\n\r\n----\r\n',
        b"Content-Type: text/plain; charset=\"utf-8\"; charset*=''x\r\nFrom: a@b.c\r\n\r\n\xff",
        b"Content-Disposition: attachment; filename*=bogus''%ZZ\r\nFrom: a@b.c\r\n\r\nx",
        b"From: " + b"a" * 5000 + b"@example.org\r\nMessage-ID: <" + b"x" * 2000 + b"@y>\r\n\r\nx",
    ]
    for body in samples:
        try:
            result = connector.parse(request(body), PLAIN)
        except PayloadError:
            continue
        [event] = result.events
        assert msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent) == event  # within the schema


def test_overlong_ids_are_hashed_to_fit() -> None:
    long_id = "x" * 600 + "@example.org"
    raw = f"From: a@example.org\r\nMessage-ID: <{long_id}>\r\n\r\nhi".encode()
    [event] = connector.parse(request(raw), PLAIN).events
    assert event.external_id.startswith("sha256:") and event.thread_key == event.external_id
    assert details(event).message_id == long_id
    assert msgspec.json.decode(msgspec.json.encode(event), type=InteractionEvent) == event


def test_multipart_form_data_parser() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\ncaf\xe9\r\nline 2\r\n'
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="r\xc3\xa9sum\xc3\xa9.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF\x00\r\n\r\n--\r\nend\n\r\n"
        b'--b\r\nContent-Disposition: form-data; name="t"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9'
        b"\r\n--b--\r\n"
    )
    text, file, typed = parse_form_data("multipart/form-data; boundary=b", body)
    assert (text.name, text.value, text.filename) == ("text", b"caf\xe9\r\nline 2", None)
    assert (file.filename, file.content_type, file.value) == (
        "résumé.pdf",
        "application/pdf",
        b"%PDF\x00\r\n\r\n--\r\nend\n",
    )
    assert (typed.charset, typed.text()) == ("iso-8859-1", "é")
    # A filename as an RFC 2047 encoded word, and a Content-Disposition folded over two lines.
    encoded, folded = parse_form_data(
        "multipart/form-data; boundary=b",
        b'--b\r\nContent-Disposition: form-data; name="f"; filename="=?UTF-8?B?w6l0w6kudHh0?="\r\n\r\nx\r\n'
        b'--b\r\nContent-Disposition: form-data; name="g";\r\n filename="a long\r\n name.txt"\r\n\r\ny\r\n--b--\r\n',
    )
    assert (encoded.name, encoded.filename) == ("f", "été.txt")
    assert (folded.name, folded.filename, folded.value) == ("g", "a long name.txt", b"y")
    for content_type, broken, field in [
        ("multipart/form-data", body, "content-type"),
        ("application/json", body, "content-type"),
        ("multipart/form-data; boundary=other", body, "$"),
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Type: text/plain\r\n\r\nno name\r\n--b--", "$"),
    ]:
        with pytest.raises(PayloadError) as rejected:
            parse_form_data(content_type, broken)
        assert rejected.value.field == field


def test_received_in_the_future_date_is_capped() -> None:
    raw = b"From: a@example.org\r\nDate: Mon, 1 Jan 2046 00:00:00 +0000\r\n\r\nhi"
    [event] = connector.parse(request(raw), PLAIN).events
    assert event.occurred_at == RECEIVED and RECEIVED + timedelta(days=1) > event.occurred_at


def test_multipart_without_a_boundary_keeps_its_body_as_text() -> None:
    raw = b"From: a@example.org\r\nMessage-ID: <nb@example.org>\r\nContent-Type: multipart/mixed\r\n\r\nHello there\r\n"
    [event] = connector.parse(request(raw), PLAIN).events
    assert (event.text, event.attachments) == ("Hello there", [])
