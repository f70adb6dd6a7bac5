-- Bulk import (unify/importer.py); the chunk functions are in migration 0009.

-- name: start_import
-- The import of file $1 (sha256) in format $2 under mapping $3; created with chunk size $6 unless it exists, in
-- which case its own chunk size is kept (the chunks were numbered with it).
insert into import_run as r (sha256, format, mapping, file_name, size_bytes, chunk_size)
values ($1, $2, $3, $4, $5, $6)
on conflict (sha256, format, mapping) do update set file_name = r.file_name
returning r.id, r.chunk_size, r.finished_at, (r.xmax = 0) as created;

-- name: committed_chunks
select chunk_no from import_chunk where import_id = $1;

-- name: claim_chunk
-- Taken at the start of the chunk's transaction: a concurrent run of the same import waits here, then skips it.
insert into import_chunk (import_id, chunk_no, first_line, line_count)
values ($1, $2, $3, $4)
on conflict (import_id, chunk_no) do nothing
returning chunk_no;

-- name: finish_chunk
update import_chunk set raw_event_id = $3, counts = $4, committed_at = now()
where import_id = $1 and chunk_no = $2;

-- name: finish_import
update import_run set finished_at = now() where id = $1;

-- name: create_event_stage
create temp table import_stage (
    ord                integer not null,
    key_rank           integer not null,
    source             text    not null,
    external_id        text    not null,
    channel            text    not null,
    direction          text    not null,
    status             text    not null,
    revision           bigint  not null,
    occurred_at        timestamptz not null,
    answered_at        timestamptz,
    ended_at           timestamptz,
    agent              text,
    queue              text,
    thread_key         text,
    subject            text,
    reason             text,
    disposition        text,
    queue_wait_seconds double precision,
    hold_seconds       double precision,
    talk_seconds       double precision,
    transfer_count     integer not null,
    event              text    not null,
    redactions         text    not null,
    kinds              text[]  not null,
    vals               text[]  not null,
    levels             text[]  not null,
    display_name       text
) on commit drop;

-- name: apply_events
-- The staged events under raw event $1 and identity policy $2.
select o_created as created, o_updated as updated, o_duplicates as duplicates, o_recorded as recorded,
       o_linked as linked, o_linked_new as linked_new, o_linked_bridge as linked_bridge, o_customers as customers,
       o_suggestions as suggestions, o_upsert_ms as upsert_ms, o_classify_ms as classify_ms, o_link_ms as link_ms,
       o_record_ms as record_ms
from import_apply_events($1, $2);

-- name: first_contacts
-- After apply_events or link_contacts, in the same transaction: the rows linked in bulk as first contacts of their
-- identifier (migration 0016).
select count(*) from import_way where way = 'first';

-- name: create_contact_stage
create temp table import_contact_stage (
    ord          integer not null,
    kinds        text[]  not null,
    vals         text[]  not null,
    levels       text[]  not null,
    display_name text
) on commit drop;

-- name: link_contacts
select o_recorded as recorded, o_linked as linked, o_linked_new as linked_new, o_linked_bridge as linked_bridge,
       o_customers as customers, o_suggestions as suggestions, o_classify_ms as classify_ms, o_link_ms as link_ms,
       o_record_ms as record_ms
from import_link_contacts($1);

-- name: table_rows
-- The planner's idea of how many interactions there are (0 for a table never analyzed).
select greatest(reltuples, 0)::bigint from pg_class where oid = 'interaction'::regclass;

-- name: analyze_identity
-- The linking rule's plans were made for the tables as they were; an import that doubles them refreshes the
-- statistics (autovacuum lags behind a fast import by minutes) so that they are planned again.
analyze identifier, customer, identifier_usage;

-- name: chunk_totals
-- Where an import's time went, from what each chunk recorded of itself: rows by the way identities were resolved
-- (set-based: already known, or first contacts linked in bulk; or by the rule: naming a new identifier, naming
-- several customers) and milliseconds per step (prepare runs in a thread, overlapping the database steps).
select sum((counts ->> 'recorded')::int) as rows_recorded, sum((counts ->> 'first')::int) as rows_first,
       sum((counts ->> 'linked')::int) as rows_linked,
       sum((counts ->> 'linked_new')::int) as linked_new, sum((counts ->> 'linked_bridge')::int) as linked_bridge,
       round(sum((counts ->> 'prepare_ms')::numeric)) as prepare_ms,
       round(sum((counts ->> 'stage_ms')::numeric)) as stage_ms,
       round(sum((counts ->> 'upsert_ms')::numeric)) as upsert_ms,
       round(sum((counts ->> 'classify_ms')::numeric)) as classify_ms,
       round(sum((counts ->> 'link_ms')::numeric)) as link_ms,
       round(sum((counts ->> 'record_ms')::numeric)) as record_ms,
       round(sum((counts ->> 'apply_ms')::numeric)) as apply_ms
from import_chunk
where import_id = $1;
