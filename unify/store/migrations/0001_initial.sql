-- unify: initial schema.
-- Raw bodies first (nothing is lost), then the normalized interactions, the identifiers that recognise a customer,
-- the evidence linking them, and API keys. Tables are keyed so that they can later be distributed by customer.

create table raw_event (
    id            bigint generated always as identity primary key,
    route         text        not null,
    content_type  text,
    headers       jsonb       not null default '[]',
    body          bytea       not null,
    body_size     bigint      not null,
    truncated     boolean     not null default false,
    received_at   timestamptz not null default now(),
    status        text        not null default 'received'
                  check (status in ('received', 'processed', 'rejected', 'failed')),
    error         jsonb,
    processed_at  timestamptz
);
create index raw_event_unprocessed on raw_event (route, received_at) where status <> 'processed';

create table customer (
    id            uuid        primary key default uuidv7(),
    display_name  text,
    created_at    timestamptz not null default now()
);

create table identifier (
    id                     bigint generated always as identity primary key,
    kind                   text        not null check (kind in ('phone', 'email', 'chat', 'account', 'external')),
    value                  text        not null,
    verification           text        not null default 'unverified'
                           check (verification in ('unverified', 'carrier_attested', 'signed', 'authenticated')),
    first_seen             timestamptz not null,
    last_seen              timestamptz not null,
    customer_id            uuid references customer (id),
    linked_at              timestamptz,
    link_rule              text,
    linked_by_interaction  uuid,
    unique (kind, value)
);
create index identifier_customer on identifier (customer_id);

create table interaction (
    id                  uuid        primary key default uuidv7(),
    source              text        not null,
    external_id         text        not null,
    channel             text        not null check (channel in ('voice', 'sms', 'email', 'chat')),
    direction           text        not null check (direction in ('inbound', 'outbound', 'internal')),
    status              text        not null,
    revision            bigint      not null default 0,
    occurred_at         timestamptz not null,
    answered_at         timestamptz,
    ended_at            timestamptz,
    agent               text,
    queue               text,
    thread_key          text,
    subject             text,
    reason              text,
    disposition         text,
    queue_wait_seconds  double precision,
    hold_seconds        double precision,
    talk_seconds        double precision,
    transfer_count      integer     not null default 0,
    event               jsonb       not null,
    identified          boolean     not null default false,
    raw_event_id        bigint,
    received_at         timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    unique (source, external_id)
);
create index interaction_occurred on interaction (occurred_at);
create index interaction_thread on interaction (thread_key) where thread_key is not null;

create table interaction_identifier (
    interaction_id  uuid   not null,
    identifier_id   bigint not null,
    verification    text   not null,
    primary key (interaction_id, identifier_id)
);
create index interaction_identifier_by_identifier on interaction_identifier (identifier_id, interaction_id);

create table api_key (
    id            uuid        primary key default uuidv7(),
    name          text        not null,
    secret_hash   bytea       not null,
    scopes        text[]      not null,
    created_at    timestamptz not null default now(),
    revoked_at    timestamptz,
    last_used_at  timestamptz
);
