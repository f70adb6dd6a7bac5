-- Per-connector settings (secrets, public URL, default region, …), and what makes webhook deliveries safe to
-- receive more than once: replay tokens already seen, and parts of split messages waiting for their siblings.

create table connector_setting (
    connector   text        primary key,
    settings    jsonb       not null default '{}',
    updated_at  timestamptz not null default now()
);

create table webhook_replay (
    connector  text        not null,
    token      text        not null,
    seen_at    timestamptz not null default now(),
    primary key (connector, token)
);

create table message_fragment (
    connector     text        not null,
    group_key     text        not null,
    part_index    integer     not null,
    part_total    integer     not null,
    text          text        not null,
    event         jsonb       not null,
    raw_event_id  bigint,
    received_at   timestamptz not null default now(),
    primary key (connector, group_key, part_index)
);

-- A delivery whose signature did not verify is kept, flagged as such.
alter table raw_event drop constraint raw_event_status_check;
alter table raw_event add constraint raw_event_status_check
    check (status in ('received', 'processed', 'rejected', 'unverified', 'failed'));
