"""A deterministic demo data set: six weeks of contact-center history of a fictional telco, Example Telco.

`demo_events()` returns `InteractionEvent`s (source ``demo``) for `customers` people with international names.
Each person has a fictional phone number (+1 415/212 555-01xx, or UK +44 7700 900xxx), an address at an
example domain, a web-chat visitor handle and often an account number, and uses one to four channels.

Histories are built from episodes: one reason (billing, outage, ...) that the customer raises again within
days, often on another channel (an email, then a call, then a chat about the same bill). Calls queue, hold,
get transferred or abandoned; texts and emails get replies; emails thread by Message-ID; logged-in chats carry
an authenticated account id. The set also holds what makes unification hard: one phone number written in
several formats, anonymous callers, and a company switchboard number that several customers call from.

Everything is drawn from `random.Random(seed)`; `now` only shifts the timestamps. External ids depend on the
seed, the customer index and the contact index only, so loading the set again another day dedupes by key."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import (
    Attachment,
    Channel,
    ChatDetails,
    CustomerParty,
    EmailDetails,
    Endpoint,
    Identifier,
    InteractionEvent,
    InteractionStatus,
    SmsDetails,
    Verification,
    VoiceDetails,
)

SOURCE = "demo"
BUSINESS_PHONE = "+14155550100"
SUPPORT_EMAIL = "support@example-telco.com"
SWITCHBOARD, SWITCHBOARD_NAME = "+1 212-555-0100", "NORTHWIND TRADING"

_FIRST = (
    "Amara Bjørn Chen Dmitri Élodie Fatima Giulia Hiroshi Inès Jamal Kwame Lena Mateo Nadia Oluwaseun "
    "Priya Rosa Sven Tomasz Yuki Zainab Aoife Rahul Sofía Liam Mei Omar Ana Kofi Noah"
).split()
_LAST = (
    "Okafor Lindqvist Wang Petrov Moreau Haddad Rossi Tanaka García Hughes Mensah Schmidt Álvarez Kowalski "
    "Nakamura O'Brien Patel Silva Nguyen Kim Dubois Müller Novák Cohen Adeyemi Murphy Costa Jensen Singh "
    "Yılmaz"
).split()
_AGENTS = (
    "Maya Thompson", "Diego Ramírez", "Aisha Bello", "Tom Becker", "Priyanka Rao",
    "Lucas Martin", "Hannah Lee", "Sam O'Connor", "Yara Nasser", "Ben Carter",
)  # fmt: skip
_CHANNELS: tuple[Channel, ...] = ("voice", "sms", "email", "chat")
_CHANNEL_WEIGHT: dict[Channel, float] = {"voice": 4.0, "email": 3.0, "sms": 2.0, "chat": 2.0}
_QUEUE = {
    "billing": "billing", "outage": "tech", "technical_support": "tech", "cancellation": "retention",
    "plan_change": "retention", "delivery": "general", "complaint": "general",
}  # fmt: skip
_ESCALATION = {  # where a call goes after the first queue, for 1 or 2 transfers
    "billing": ("billing", "retention"), "tech": ("tech", "billing"),
    "retention": ("retention", "billing"), "general": ("retention", "billing"),
}  # fmt: skip
_CONTENT: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # reason: (email subject, what customers write, what agents answer)
    "billing": ("Question about my latest bill", (
        "My bill this month is $38 higher than usual and I can't see why.",
        "I was charged twice for March, can you refund one of the payments?"), (
        "A one-off roaming charge was applied by mistake; I've credited it back.",
        "You're right, the duplicate payment will be refunded within 5 business days.")),
    "outage": ("No internet since this morning", (
        "Internet has been down since 7am, the router lights are blinking orange.",
        "Mobile data keeps dropping at home. Is there an outage?"), (
        "There is a known outage in your area; engineers expect it fixed by 6pm.",
        "We've reset your line from our side, please restart the router.")),
    "cancellation": ("Cancel my contract", (
        "I'm moving abroad next month and need to cancel my contract.",
        "Please cancel my TV add-on, I never use it."), (
        "I've scheduled the cancellation for the end of your billing period.",
        "Before you go: we can offer you 3 months at half price.")),
    "plan_change": ("Upgrade to Fibre 500", (
        "I'd like to upgrade to the 500 Mbps fibre plan.",
        "Can I switch to unlimited data without a new contract?"), (
        "Your plan change is confirmed and starts with your next bill.",
        "Yes, the switch is free; I've applied it from today.")),
    "delivery": ("Where is my router?", (
        "My new router was due on Tuesday and still hasn't arrived.",
        "The courier left a card but I was home all day."), (
        "Your router is out for delivery today, tracking number EX123456789GB.",
        "I've rebooked the delivery for Thursday between 8am and 12pm.")),
    "technical_support": ("Wi-Fi keeps disconnecting", (
        "My Wi-Fi drops every few minutes on all devices.",
        "I can't set up voicemail on my new phone."), (
        "Please switch the Wi-Fi channel to 36; the steps are in our help centre.",
        "I've reset your voicemail PIN; dial 123 to set it up.")),
    "complaint": ("Formal complaint", (
        "This is the third time I'm contacting you about the same issue and nobody called back.",
        "The engineer didn't turn up and I took the day off work for it."), (
        "I'm sorry about this. I've escalated your case and added a goodwill credit.",
        "I apologise. A team leader will call you back within 24 hours.")),
}  # fmt: skip
_REASONS = tuple(_CONTENT)
_NOTICES = {  # texts the business sends first
    "outage": "Example Telco: we know about an outage in your area and are on it. Reply STOP to opt out.",
    "delivery": "Example Telco: your order has shipped. Track it at example-telco.com/track",
}
_ATTACHMENTS = {
    "billing": ("bill-march.pdf", "application/pdf"), "complaint": ("letter.pdf", "application/pdf"),
    "technical_support": ("router-lights.jpg", "image/jpeg"), "outage": ("speedtest.png", "image/png"),
}  # fmt: skip
_ASCII = str.maketrans({"ø": "o", "ı": "i", "ß": "ss", "'": "", " ": ""})


@dataclass
class _Person:
    index: int
    first: str
    name: str
    phone: str  # E.164
    email: str
    chat_handle: str
    account: str | None
    channels: tuple[Channel, ...]
    main_reason: str
    at_company: bool = False  # calls in from the shared switchboard number at times
    withholds_number: bool = False  # calls in as "anonymous" at times


@dataclass
class _Ctx:
    rng: random.Random
    now: datetime
    seed: int
    person: _Person
    contacts: int = 0

    def key(self) -> str:
        """The next external id: seed, customer index and contact index, never the clock."""
        self.contacts += 1
        return f"demo-{self.seed}-{self.person.index:03d}-{self.contacts:02d}"

    def at(self, hours_ago: float) -> datetime:
        return self.now - timedelta(seconds=round(hours_ago * 3600))

    def party(self, *identifiers: Identifier) -> CustomerParty:
        return CustomerParty(identifiers=list(identifiers), display_name=self.person.name)


def demo_events(*, now: datetime, customers: int = 60, seed: int = 7) -> list[InteractionEvent]:
    """A realistic, deterministic contact-center history: `customers` people, six weeks, all four channels.

    The same `seed` and `customers` give the same events; `now` (timezone-aware) only moves the timestamps."""
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    if not 1 <= customers <= len(_FIRST) * len(_LAST):
        raise ValueError(f"`customers` must be between 1 and {len(_FIRST) * len(_LAST)}")
    rng = random.Random(seed)
    events: list[InteractionEvent] = []
    for person in _people(rng, customers):
        events.extend(_history(_Ctx(rng=rng, now=now.astimezone(UTC), seed=seed, person=person)))
    return sorted(events, key=lambda e: e.occurred_at)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().translate(_ASCII))
    return folded.encode("ascii", "ignore").decode()


def _people(rng: random.Random, customers: int) -> list[_Person]:
    names = rng.sample([(first, last) for first in _FIRST for last in _LAST], customers)
    us = rng.sample([f"+1{area}55501{n:02d}" for area in ("415", "212") for n in range(1, 100)], 198)
    uk = rng.sample([f"+447700900{n:03d}" for n in range(1, 1000)], 999)
    people: list[_Person] = []
    taken: set[str] = set()
    for index, (first, last) in enumerate(names):
        british = rng.random() < 0.25 or not us
        f, s, n = _ascii(first), _ascii(last), rng.randint(1, 99)
        local = rng.choice([f"{f}.{s}", f"{f}{s}", f"{f[0]}.{s}", f"{f}_{s}{n}"])
        domain = rng.choice(["example.com", "example.org", "example.net"])
        domain = "mail.example.co.uk" if british and rng.random() < 0.7 else domain
        while f"{local}@{domain}" in taken:
            local += str(rng.randint(0, 9))
        taken.add(f"{local}@{domain}")
        count = rng.choices([1, 2, 3, 4], weights=[15, 40, 30, 15])[0]
        channels = sorted(_CHANNELS, key=lambda c: rng.random() ** (1 / _CHANNEL_WEIGHT[c]), reverse=True)
        people.append(_Person(
            index=index, first=first, name=f"{first} {last}", phone=(uk if british else us).pop(),
            email=f"{local}@{domain}", chat_handle=f"web-chat:visitor-{rng.getrandbits(40):010x}",
            account=f"acct-{204800 + index * 97 + rng.randrange(97)}" if rng.random() < 0.6 else None,
            channels=tuple(channels[:count]), main_reason=rng.choice(_REASONS),
        ))  # fmt: skip
    callers = [p for p in people if "voice" in p.channels and len(p.channels) > 1]
    for i, person in enumerate(rng.sample(callers, min(len(callers), 9))):
        person.at_company, person.withholds_number = i < 5, i >= 5
    return people


def _history(ctx: _Ctx) -> list[InteractionEvent]:
    """Episodes of one reason each; an episode's contacts follow each other within days, across channels."""
    rng, person = ctx.rng, ctx.person
    target = rng.randint(3, 12)
    out: list[InteractionEvent] = []
    while len(out) < target:
        reason = person.main_reason if rng.random() < 0.45 else rng.choice(_REASONS)
        hours_ago = rng.uniform(30.0, 41.5 * 24)
        steps = max(rng.randint(1, 3), 2 if not out and len(person.channels) > 1 else 1)
        offset = rng.randrange(len(person.channels))
        thread: list[str] = []  # Message-IDs of this episode's email thread
        for step in range(steps):
            channel = person.channels[(offset + step) % len(person.channels)]
            if channel == "voice":
                out.append(_call(ctx, hours_ago, reason))
            elif channel == "sms":
                out.extend(_text(ctx, hours_ago, reason))
            elif channel == "email":
                out.extend(_email(ctx, hours_ago, reason, thread))
            else:
                out.append(_chat(ctx, hours_ago, reason))
            hours_ago -= rng.uniform(4.0, 72.0)
            if hours_ago < 2.0 or len(out) >= target:
                break
    return out


def _phone_as_written(rng: random.Random, e164: str) -> str:
    """The same number the way different platforms and people write it."""
    if rng.random() < 0.6:
        return e164
    if e164.startswith("+44"):
        return rng.choice([f"+44 {e164[3:7]} {e164[7:]}", f"tel:{e164}"])
    area, exchange, line = e164[2:5], e164[5:8], e164[8:]
    return rng.choice([f"+1 {area}-{exchange}-{line}", f"({area}) {exchange}-{line}", f"tel:{e164}"])


def _call(ctx: _Ctx, hours_ago: float, reason: str) -> InteractionEvent:
    """An inbound call (queued, maybe held and transferred, or abandoned) or an outbound callback."""
    rng, person = ctx.rng, ctx.person
    key, start = ctx.key(), ctx.at(hours_ago)
    outbound = rng.random() < 0.2
    cnam: str | None = " ".join(_ascii(part) for part in person.name.split()).upper()[:15]
    verstat = None
    party = ctx.party(Identifier(kind="phone", value=_phone_as_written(rng, person.phone)))
    if outbound:
        status: InteractionStatus = rng.choices(["completed", "no_answer", "busy"], weights=[60, 28, 12])[0]
    else:
        status = "completed" if rng.random() < 0.82 else "abandoned"
        if person.withholds_number and rng.random() < 0.5:
            party, cnam = CustomerParty(identifiers=[Identifier(kind="phone", value="anonymous")]), None
        elif person.at_company and rng.random() < 0.7:
            party, cnam = ctx.party(Identifier(kind="phone", value=SWITCHBOARD)), SWITCHBOARD_NAME
        elif rng.random() < 0.3:
            verstat = "TN-Validation-Passed-A"
            party = ctx.party(Identifier(kind="phone", value=person.phone, verification="carrier_attested"))
        if person.account and status == "completed" and rng.random() < 0.25:  # account PIN entered in the IVR
            pin = Identifier(kind="account", value=person.account, verification="authenticated")
            party = CustomerParty(identifiers=[*party.identifiers, pin], display_name=party.display_name)
    answered_in = not outbound and status == "completed"
    transfers = rng.choices([0, 1, 2], weights=[72, 20, 8])[0] if answered_in else 0
    path = ["general", *_ESCALATION[_QUEUE[reason]]][: transfers + 1] if transfers else [_QUEUE[reason]]
    wait = None if outbound else float(rng.randint(8, 420))
    ring = rng.randint(6, 35)
    holds = rng.choice([0, 0, 0, 1, 1, 2, 3]) if status == "completed" else 0
    hold = float(sum(rng.randint(20, 240) for _ in range(holds)))
    answered = talk = None
    agent: str | None = rng.choice(_AGENTS)
    disconnect = rng.choice(["CUSTOMER_DISCONNECT", "AGENT_DISCONNECT", None])
    if status == "completed":
        talk = float(rng.randint(90, 1500) + 240 * transfers)
        answered = start + timedelta(seconds=wait if wait is not None else ring)
        ended = answered + timedelta(seconds=talk + hold)
    elif status == "abandoned":
        agent, disconnect = None, "CUSTOMER_DISCONNECT"
        ended = start + timedelta(seconds=wait or 0)
    else:
        ended = start + timedelta(seconds=3 if status == "busy" else ring)
        disconnect = "NO_ANSWER" if status == "no_answer" else "BUSY"
    return InteractionEvent(
        source=SOURCE, external_id=key, channel="voice", direction="outbound" if outbound else "inbound",
        occurred_at=start, status=status, answered_at=answered, ended_at=ended, customer=party,
        endpoint=Endpoint(kind="phone", value=BUSINESS_PHONE), agent=agent, queue=path[-1], reason=reason,
        disposition=rng.choice(["resolved", "resolved", "follow_up", "escalated"]) if talk else None,
        queue_wait_seconds=wait, hold_seconds=hold if talk else None, talk_seconds=talk,
        transfer_count=transfers, attributes={"queue_path": " > ".join(path)} if transfers else {},
        details=VoiceDetails(
            caller_name=None if outbound else cnam, stir_verstat=verstat, number_of_holds=holds,
            initiation_method="CALLBACK" if outbound else "INBOUND", disconnect_reason=disconnect,
            recording_url=f"https://recordings.example-telco.com/{key}.wav" if talk else None,
        ),
    )  # fmt: skip


def _sms(
    ctx: _Ctx, hours_ago: float, reason: str, text: str, *, inbound: bool, agent: str | None = None
) -> InteractionEvent:
    return InteractionEvent(
        source=SOURCE, external_id=ctx.key(), channel="sms", direction="inbound" if inbound else "outbound",
        occurred_at=ctx.at(hours_ago), status="received" if inbound else "delivered",
        customer=ctx.party(Identifier(kind="phone", value=_phone_as_written(ctx.rng, ctx.person.phone))),
        endpoint=Endpoint(kind="phone", value=BUSINESS_PHONE), agent=agent, text=text, reason=reason,
        details=SmsDetails(segments=1 if len(text) <= 160 else -(-len(text) // 153)),
    )  # fmt: skip


def _text(ctx: _Ctx, hours_ago: float, reason: str) -> list[InteractionEvent]:
    """A customer's text and the agent's reply, or (outages, deliveries) a notification from the business."""
    rng = ctx.rng
    if reason in _NOTICES and rng.random() < 0.4:
        return [_sms(ctx, hours_ago, reason, _NOTICES[reason], inbound=False)]
    _, asks, replies = _CONTENT[reason]
    agent = rng.choice(_AGENTS)
    reply = f"Hi {ctx.person.first}, {rng.choice(replies)} {agent.split()[0]}, Example Telco"
    question = _sms(ctx, hours_ago, reason, rng.choice(asks), inbound=True)
    return [question, _sms(ctx, hours_ago - rng.uniform(0.1, 1.5), reason, reply, inbound=False, agent=agent)]


def _email(ctx: _Ctx, hours_ago: float, reason: str, thread: list[str]) -> list[InteractionEvent]:
    """A customer's email (new, or a follow-up in the episode's thread) and usually the agent's reply."""
    rng, person = ctx.rng, ctx.person
    subject, asks, replies = _CONTENT[reason]
    signed = rng.random() < 0.55
    verification: Verification = "signed" if signed else "unverified"
    address = rng.choice([person.email, f"{person.name} <{person.email}>", person.email.title()])
    ask = f"Following up on my earlier message: {rng.choice(asks)}" if thread else rng.choice(asks)
    text = f"Hi,\n\n{ask}\n\nThanks,\n{person.first}"
    files = [
        Attachment(filename=name, content_type=content_type, size_bytes=rng.randint(40_000, 2_500_000))
        for name, content_type in [_ATTACHMENTS.get(reason, ("", ""))]
        if name and rng.random() < 0.2
    ]
    events: list[InteractionEvent] = []
    for inbound in (True, False):
        if not inbound and rng.random() < 0.3:
            break  # not answered yet
        key, agent = ctx.key(), None if inbound else rng.choice(_AGENTS)
        message_id = f"<{key}@mail.example.com>"
        if not inbound:
            signed, verification, files = False, "unverified", []
            hours_ago -= min(rng.uniform(0.3, 20.0), hours_ago - 1.0)
            text = f"Hello {person.first},\n\n{rng.choice(replies)}\n\nKind regards,\n{agent}\nExample Telco"
        events.append(
            InteractionEvent(
                source=SOURCE, external_id=key, channel="email",
                direction="inbound" if inbound else "outbound", occurred_at=ctx.at(hours_ago),
                status="received" if inbound else "delivered",
                customer=ctx.party(Identifier(kind="email", value=address, verification=verification)),
                endpoint=Endpoint(kind="email", value=SUPPORT_EMAIL), agent=agent, queue=_QUEUE[reason],
                thread_key=thread[0] if thread else message_id,
                subject=f"Re: {subject}" if thread else subject, text=text, reason=reason, attachments=files,
                details=EmailDetails(
                    message_id=message_id, in_reply_to=thread[-1] if thread else None,
                    references=list(thread), spf="pass" if signed else None, dkim="pass" if signed else None,
                ),
            )
        )  # fmt: skip
        thread.append(message_id)
    return events


def _chat(ctx: _Ctx, hours_ago: float, reason: str) -> InteractionEvent:
    """A web chat; logged-in visitors carry their account id, others may give an email before it starts."""
    rng, person = ctx.rng, ctx.person
    key, start = ctx.key(), ctx.at(hours_ago)
    conversation = f"wc-{rng.getrandbits(48):012x}"
    identifiers = [Identifier(kind="chat", value=person.chat_handle)]
    if person.account and rng.random() < 0.7:
        identifiers.append(Identifier(kind="account", value=person.account, verification="authenticated"))
    elif rng.random() < 0.5:
        identifiers.append(Identifier(kind="email", value=person.email))
    _, asks, replies = _CONTENT[reason]
    wait = float(rng.randint(5, 240))
    left = rng.random() < 0.1  # the visitor gave up before an agent joined
    agent = None if left else rng.choice(_AGENTS)
    answered = None if left else start + timedelta(seconds=wait)
    ended = (answered or start) + timedelta(seconds=rng.randint(180, 1500) if answered else wait)
    text = f"Visitor: {rng.choice(asks)}"
    if agent:
        text += f"\n{agent}: {rng.choice(replies)}\nVisitor: Thanks!"
    return InteractionEvent(
        source=SOURCE, external_id=key, channel="chat", direction="inbound", occurred_at=start,
        status="abandoned" if left else "completed", answered_at=answered, ended_at=ended,
        customer=ctx.party(*identifiers), endpoint=Endpoint(kind="chat", value="web-chat"), agent=agent,
        queue=_QUEUE[reason], thread_key=conversation, text=text, reason=reason, queue_wait_seconds=wait,
        details=ChatDetails(
            platform="web-chat", conversation_id=conversation, author_type="customer",
            visitor_id=person.chat_handle.split(":", 1)[1], message_count=1 if left else 3,
        ),
    )  # fmt: skip
