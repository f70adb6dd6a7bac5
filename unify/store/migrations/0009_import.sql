-- Bulk import (unify/importer.py): files of native events (JSONL) or CRM contacts (CSV) loaded chunk by chunk.
--
-- * An import is one file under one reading: its sha256, its format and (CSV) the column mapping with the
--   verification level. Each chunk of lines is applied in one transaction that also records it here, so running
--   the same import again skips what was committed and carries on after an interruption.
-- * A chunk's rows arrive by COPY in a temporary table (import_stage, or import_contact_stage for contacts). The
--   functions below apply them: interactions are upserted set-based with the folding of upsert_interaction_event;
--   identities are resolved by link_interaction_identifiers (migration 0007), called once per row in file order,
--   except for rows the rule could not change: every identifier already known and owned by one group of
--   customers (or a single identifier that is shared), and nothing for the display name to fill. For those the
--   rule would only record the sighting (first/last seen, a stronger verification) and the interaction's
--   identifiers, which is done for all of them at once. Such rows commute with every other row (others can only
--   merge groups or mark identifiers shared), so doing them together gives the rule's result. The tests compare
--   imports with streaming ingest of the same random histories: a change to the rule that breaks this shows there.

create table import_run (
    id          uuid        primary key default uuidv7(),
    sha256      text        not null,
    format      text        not null check (format in ('jsonl', 'csv')),
    -- CSV: the mapping and verification level as `kind=Column,…;level` (empty for JSONL).
    mapping     text        not null default '',
    file_name   text        not null,
    size_bytes  bigint      not null,
    -- Chunks are numbered under the size the import started with; a resumed run keeps it.
    chunk_size  integer     not null check (chunk_size > 0),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    unique (sha256, format, mapping)
);

create table import_chunk (
    import_id    uuid        not null,
    chunk_no     integer     not null,
    first_line   bigint      not null,
    line_count   integer     not null,
    raw_event_id bigint,
    -- What applying it did: {"created": …, "updated": …, "duplicates": …, …}.
    counts       jsonb       not null default '{}',
    committed_at timestamptz not null default now(),
    primary key (import_id, chunk_no)
);

-- Resolve the identities of the rows in temporary table import_link (ord, interaction_id, seen_at, kinds, vals,
-- levels, display_name): rows the rule could change go through link_interaction_identifiers in `ord` order, the
-- others are recorded set-based (see the top of this file). Returns how many rows took each way (those linked: how
-- many named an identifier unknown before the chunk, how many named several customers) and the time each way took.
create function import_link_staged(
    p_policy jsonb,
    out o_recorded integer,
    out o_linked integer,
    out o_linked_new integer,
    out o_linked_bridge integer,
    out o_classify_ms double precision,
    out o_link_ms double precision,
    out o_record_ms double precision
)
language plpgsql
as $$
declare
    v_names constant text[] := array['unverified', 'carrier_attested', 'signed', 'authenticated'];
    v_started timestamptz := clock_timestamp();
    v_ids bigint[];
    r record;
begin
    -- Each row's identifiers with what is known of them before this chunk. Every lookup is by index, one per
    -- identifier (lateral, scalar subqueries): joined, the planner would scan the whole tables for each chunk.
    create temp table import_ident on commit drop as
    select i.*,
           -- Whether the group has a name matters only to a row that brings one.
           case when i.display_name is not null
                then (select g.display_name is not null from customer g where g.id = i.root_id) end as named
    from (
        select l.ord, l.display_name, t.kind, t.value, t.level, verification_rank(t.level) as rank,
               d.id as identifier_id, d.customer_id, d.shared,
               (select c.root_id from customer c where c.id = d.customer_id) as root_id
        from import_link l
        cross join lateral unnest(l.kinds, l.vals, l.levels) as t (kind, value, level)
        left join lateral (
            select d.id, d.customer_id, d.shared from identifier d where d.kind = t.kind and d.value = t.value limit 1
        ) as d on true
        offset 0
    ) as i;
    analyze import_ident;

    -- How the rule would treat each row: 'new' when it names an identifier nobody owns (unknown, or unlinked and
    -- unshared), 'bridge' when it names several groups, 'shared' when it names a shared identifier among others (the
    -- rule records who was seen next to it), 'name' when its display name would fill an empty one; otherwise
    -- 'recorded': a single shared identifier, or identifiers all owned by one group, which has a name if it brings
    -- one.
    create temp table import_way on commit drop as
    select i.ord,
           case when not bool_and(i.identifier_id is not null and (i.shared or i.customer_id is not null)) then 'new'
                when count(distinct i.root_id) filter (where not i.shared) > 1 then 'bridge'
                when count(*) > 1 and bool_or(i.shared) then 'shared'
                when i.display_name is not null and not coalesce(bool_or(i.named) filter (where not i.shared), true)
                then 'name'
                else 'recorded' end as way
    from import_ident i
    group by i.ord, i.display_name;
    alter table import_way add primary key (ord);
    analyze import_way;
    o_classify_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    v_started := clock_timestamp();
    for r in
        select l.interaction_id, l.kinds, l.vals, l.levels, l.seen_at, l.display_name
        from import_link l
        join import_way w on w.ord = l.ord and w.way <> 'recorded'
        order by l.ord
    loop
        perform link_interaction_identifiers(r.interaction_id, r.kinds, r.vals, r.levels, r.seen_at,
                                             r.display_name, p_policy);
    end loop;
    o_link_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    v_started := clock_timestamp();
    -- The sightings, as link_interaction_identifiers' upsert records them, in identifier order (found through
    -- their ids, by index).
    select array_agg(distinct i.identifier_id) into v_ids
    from import_ident i join import_way w on w.ord = i.ord and w.way = 'recorded';
    update identifier d
    set first_seen   = least(d.first_seen, a.first_seen),
        last_seen    = greatest(d.last_seen, a.last_seen),
        verification = case when a.rank > verification_rank(d.verification) then v_names[a.rank]
                            else d.verification end
    from (
        select i.identifier_id, min(l.seen_at) as first_seen, max(l.seen_at) as last_seen, max(i.rank) as rank
        from import_ident i
        join import_way w on w.ord = i.ord and w.way = 'recorded'
        join import_link l on l.ord = i.ord
        group by i.identifier_id
        order by i.identifier_id
    ) as a
    where d.id = any(v_ids) and d.id = a.identifier_id
      and (a.first_seen < d.first_seen or a.last_seen > d.last_seen or a.rank > verification_rank(d.verification));

    insert into interaction_identifier as ii (interaction_id, identifier_id, verification)
    select l.interaction_id, i.identifier_id, v_names[max(i.rank)]
    from import_ident i
    join import_way w on w.ord = i.ord and w.way = 'recorded'
    join import_link l on l.ord = i.ord
    where l.interaction_id is not null
    group by l.interaction_id, i.identifier_id
    on conflict (interaction_id, identifier_id) do update set verification = excluded.verification
    where verification_rank(excluded.verification) > verification_rank(ii.verification);
    o_record_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    select count(*) filter (where way = 'recorded'), count(*) filter (where way <> 'recorded'),
           count(*) filter (where way = 'new'), count(*) filter (where way = 'bridge')
    into o_recorded, o_linked, o_linked_new, o_linked_bridge
    from import_way;
    drop table import_ident;
    drop table import_way;
end;
$$;

-- Apply a chunk of events from temporary table import_stage (ord, key_rank, the columns of
-- upsert_interaction_event, event and redactions as JSON text, normalized identifiers, display name) under raw
-- event p_raw_event_id. Deliveries of one key within the chunk (key_rank 1, 2, …) are upserted in rounds, in file
-- order, so that they fold as they would one after the other. Returns what happened, including the customers (still
-- roots at the end) and suggestions this transaction created (found by their uuidv7 ids, which only grow).
create function import_apply_events(
    p_raw_event_id bigint,
    p_policy jsonb,
    out o_created integer,
    out o_updated integer,
    out o_duplicates integer,
    out o_recorded integer,
    out o_linked integer,
    out o_linked_new integer,
    out o_linked_bridge integer,
    out o_customers integer,
    out o_suggestions integer,
    out o_upsert_ms double precision,
    out o_classify_ms double precision,
    out o_link_ms double precision,
    out o_record_ms double precision
)
language plpgsql
as $$
declare
    v_floor uuid := uuidv7();
    v_started timestamptz := clock_timestamp();
    v_rounds integer;
begin
    create temp table import_applied (
        ord            integer     primary key,
        interaction_id uuid        not null,
        created        boolean     not null,
        seen_at        timestamptz not null
    ) on commit drop;
    select max(key_rank) into v_rounds from import_stage;

    for v_round in 1 .. coalesce(v_rounds, 0) loop
        with upserted as (
            insert into interaction as i (
                source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
                agent, queue, thread_key, subject, reason, disposition,
                queue_wait_seconds, hold_seconds, talk_seconds, transfer_count, event, raw_event_id, identified,
                redactions
            )
            select s.source, s.external_id, s.channel, s.direction, s.status, s.revision, s.occurred_at,
                   s.answered_at, s.ended_at, s.agent, s.queue, s.thread_key, s.subject, s.reason, s.disposition,
                   s.queue_wait_seconds, s.hold_seconds, s.talk_seconds, s.transfer_count, s.event::jsonb,
                   p_raw_event_id, cardinality(s.kinds) > 0, s.redactions::jsonb
            from import_stage s
            where s.key_rank = v_round
            order by s.source, s.external_id
            -- The folding of upsert_interaction_event (migration 0007), clause for clause.
            on conflict (source, external_id) do update set
                channel            = case when excluded.revision > i.revision then excluded.channel else i.channel end,
                direction          = case when excluded.revision > i.revision then excluded.direction else i.direction end,
                status             = case when excluded.revision > i.revision then excluded.status else i.status end,
                revision           = greatest(i.revision, excluded.revision),
                occurred_at        = least(i.occurred_at, excluded.occurred_at),
                answered_at        = case when excluded.revision > i.revision then coalesce(excluded.answered_at, i.answered_at)
                                          else coalesce(i.answered_at, excluded.answered_at) end,
                ended_at           = case when excluded.revision > i.revision then coalesce(excluded.ended_at, i.ended_at)
                                          else coalesce(i.ended_at, excluded.ended_at) end,
                agent              = case when excluded.revision > i.revision then coalesce(excluded.agent, i.agent)
                                          else coalesce(i.agent, excluded.agent) end,
                queue              = case when excluded.revision > i.revision then coalesce(excluded.queue, i.queue)
                                          else coalesce(i.queue, excluded.queue) end,
                thread_key         = case when excluded.revision > i.revision then coalesce(excluded.thread_key, i.thread_key)
                                          else coalesce(i.thread_key, excluded.thread_key) end,
                subject            = case when excluded.revision > i.revision then coalesce(excluded.subject, i.subject)
                                          else coalesce(i.subject, excluded.subject) end,
                reason             = case when excluded.revision > i.revision then coalesce(excluded.reason, i.reason)
                                          else coalesce(i.reason, excluded.reason) end,
                disposition        = case when excluded.revision > i.revision then coalesce(excluded.disposition, i.disposition)
                                          else coalesce(i.disposition, excluded.disposition) end,
                queue_wait_seconds = case when excluded.revision > i.revision
                                          then coalesce(excluded.queue_wait_seconds, i.queue_wait_seconds)
                                          else coalesce(i.queue_wait_seconds, excluded.queue_wait_seconds) end,
                hold_seconds       = case when excluded.revision > i.revision then coalesce(excluded.hold_seconds, i.hold_seconds)
                                          else coalesce(i.hold_seconds, excluded.hold_seconds) end,
                talk_seconds       = case when excluded.revision > i.revision then coalesce(excluded.talk_seconds, i.talk_seconds)
                                          else coalesce(i.talk_seconds, excluded.talk_seconds) end,
                transfer_count     = greatest(i.transfer_count, excluded.transfer_count),
                event              = (case when excluded.revision > i.revision then i.event || excluded.event
                                           else excluded.event || i.event end)
                                     || jsonb_build_object(
                                           'status', case when excluded.revision > i.revision then excluded.status else i.status end,
                                           'revision', greatest(i.revision, excluded.revision),
                                           'occurred_at', least(i.occurred_at, excluded.occurred_at),
                                           'transfer_count', greatest(i.transfer_count, excluded.transfer_count)),
                raw_event_id       = case when excluded.revision > i.revision then excluded.raw_event_id else i.raw_event_id end,
                identified         = i.identified or excluded.identified,
                redactions         = case when excluded.revision > i.revision then excluded.redactions
                                          else i.redactions end,
                updated_at         = now()
            where excluded.revision > i.revision
               or excluded.occurred_at < i.occurred_at
               or excluded.transfer_count > i.transfer_count
               or (excluded.event || i.event) <> i.event
            returning i.id, (i.xmax = 0) as created, i.occurred_at, i.source, i.external_id
        )
        insert into import_applied (ord, interaction_id, created, seen_at)
        select s.ord, u.id, u.created, u.occurred_at
        from upserted u
        join import_stage s on s.key_rank = v_round and s.source = u.source and s.external_id = u.external_id;
    end loop;

    select count(*) filter (where created), count(*) filter (where not created)
    into o_created, o_updated
    from import_applied;
    o_duplicates := (select count(*) from import_stage) - o_created - o_updated;
    o_upsert_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    create temp table import_link on commit drop as
    select a.ord, a.interaction_id, a.seen_at, s.kinds, s.vals, s.levels, s.display_name
    from import_applied a
    join import_stage s on s.ord = a.ord
    where cardinality(s.kinds) > 0;
    analyze import_link;

    select l.o_recorded, l.o_linked, l.o_linked_new, l.o_linked_bridge, l.o_classify_ms, l.o_link_ms, l.o_record_ms
    into o_recorded, o_linked, o_linked_new, o_linked_bridge, o_classify_ms, o_link_ms, o_record_ms
    from import_link_staged(p_policy) as l;

    select count(*) into o_customers
    from customer where id > v_floor and xmin = pg_current_xact_id()::xid and root_id = id;
    select count(*) into o_suggestions from merge_suggestion where id > v_floor and xmin = pg_current_xact_id()::xid;
    drop table import_link;
    drop table import_applied;
end;
$$;

-- Link the contacts in temporary table import_contact_stage (ord, kinds, vals, levels, display_name): each row's
-- identifiers are known together without an interaction, seen now. Returns how many rows were only recorded (all
-- already known to one customer), how many went through the rule, and the customers and suggestions created.
create function import_link_contacts(
    p_policy jsonb,
    out o_recorded integer,
    out o_linked integer,
    out o_linked_new integer,
    out o_linked_bridge integer,
    out o_customers integer,
    out o_suggestions integer,
    out o_classify_ms double precision,
    out o_link_ms double precision,
    out o_record_ms double precision
)
language plpgsql
as $$
declare
    v_floor uuid := uuidv7();
begin
    create temp table import_link on commit drop as
    select s.ord, null::uuid as interaction_id, now() as seen_at, s.kinds, s.vals, s.levels, s.display_name
    from import_contact_stage s
    where cardinality(s.kinds) > 0;
    analyze import_link;

    select l.o_recorded, l.o_linked, l.o_linked_new, l.o_linked_bridge, l.o_classify_ms, l.o_link_ms, l.o_record_ms
    into o_recorded, o_linked, o_linked_new, o_linked_bridge, o_classify_ms, o_link_ms, o_record_ms
    from import_link_staged(p_policy) as l;

    select count(*) into o_customers
    from customer where id > v_floor and xmin = pg_current_xact_id()::xid and root_id = id;
    select count(*) into o_suggestions from merge_suggestion where id > v_floor and xmin = pg_current_xact_id()::xid;
    drop table import_link;
end;
$$;
