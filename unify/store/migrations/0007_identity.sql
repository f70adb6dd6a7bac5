-- Identity: a customer is the set of identifiers linked to them by recorded evidence.
--
-- * Links: identifier.customer_id is the customer an identifier was linked to (its direct owner), with the
--   evidence: the event, the rule, the verification level, the time, or the person who moved it.
-- * Merges are records, not deletions: a merged customer keeps its row and its identifiers, and points at the
--   customer it was merged into (merged_into). customer.root_id is the customer that stands for the whole merged
--   group; every lookup goes through it. Undoing a merge clears merged_into and restores root_id for the merged
--   side, so both customers come back exactly as they were, plus what arrived in between on the side it joined.
-- * Interactions are never rewritten: an interaction's customer is derived from its identifiers' current links
--   (interaction_customer below).
-- * An identifier seen with several distinct customers (identifier_usage) is marked shared and links nobody.
-- * Evidence too weak to merge, or a merge a per-kind limit vetoes, becomes a merge suggestion for a person.
-- Replaces the first-contact rule of migration 0003.

create function verification_rank(level text) returns integer
language sql immutable parallel safe
return array_position(array['unverified', 'carrier_attested', 'signed', 'authenticated'], level);

alter table customer
    add column root_id     uuid,
    add column merged_into uuid;
update customer set root_id = id;
alter table customer alter column root_id set not null;
create index customer_root on customer (root_id);

create function customer_default_root() returns trigger
language plpgsql
as $$
begin
    new.root_id := coalesce(new.root_id, new.id);
    return new;
end;
$$;
create trigger customer_default_root before insert on customer
    for each row execute function customer_default_root();

alter table identifier
    add column shared            boolean not null default false,
    add column shared_at         timestamptz,
    add column link_verification text,
    add column linked_by         text,
    add column link_reason       text;
update identifier set link_verification = verification where customer_id is not null;
create index identifier_shared on identifier (id) where shared;

-- Which customers (direct, at the time) each identifier was seen with, for the shared-identifier rule.
create table identifier_usage (
    identifier_id  bigint      not null,
    customer_id    uuid        not null,
    interaction_id uuid,
    seen_at        timestamptz not null default now(),
    primary key (identifier_id, customer_id)
);

create table customer_merge (
    id              uuid        primary key default uuidv7(),
    survivor_id     uuid        not null,
    merged_id       uuid        not null,
    -- 'strong-evidence' (an event carried both customers' identifiers at or above the merge level),
    -- 'manual' (POST /v1/customers/{id}/merge), 'suggestion' (a suggestion accepted).
    rule            text        not null,
    verification    text,
    interaction_id  uuid,
    actor           text,
    reason          text,
    merged_at       timestamptz not null default now(),
    undone_at       timestamptz,
    undone_by       text,
    undo_reason     text
);
create index customer_merge_survivor on customer_merge (survivor_id);
create index customer_merge_merged on customer_merge (merged_id);

create table merge_suggestion (
    id                  uuid        primary key default uuidv7(),
    -- The two customers (roots when suggested), customer_a < customer_b.
    customer_a          uuid        not null,
    customer_b          uuid        not null check (customer_a < customer_b),
    -- 'evidence': an event named both; 'fuzzy': similar names and shared attributes.
    kind                text        not null check (kind in ('evidence', 'fuzzy')),
    -- 'conflict': merging would break a per-kind limit (the veto is in `conflict`).
    status              text        not null default 'pending'
                        check (status in ('pending', 'conflict', 'accepted', 'rejected', 'dismissed')),
    score               double precision,
    verification        text,
    conflict            text,
    reasons             jsonb       not null default '[]',
    identifier_ids      bigint[]    not null default '{}',
    interaction_id      uuid,
    last_interaction_id uuid,
    evidence_count      integer     not null default 1,
    created_at          timestamptz not null default now(),
    updated_at          timestamptz not null default now(),
    decided_at          timestamptz,
    decided_by          text,
    decision_reason     text,
    merge_id            uuid
);
create unique index merge_suggestion_open on merge_suggestion (customer_a, customer_b, kind)
    where status in ('pending', 'conflict');
create index merge_suggestion_status on merge_suggestion (status, created_at);
create index merge_suggestion_b on merge_suggestion (customer_b);

-- The customer of an interaction: the root of the customer owning its most strongly verified, unshared linked
-- identifier (then the earliest linked). Null: unidentified.
create function interaction_customer(p_interaction uuid) returns uuid
language sql stable parallel safe
return (
    select c.root_id
    from interaction_identifier ii
    join identifier d on d.id = ii.identifier_id
    join customer c on c.id = d.customer_id
    where ii.interaction_id = p_interaction and not d.shared
    order by verification_rank(ii.verification) desc, d.linked_at, d.id
    limit 1
);

-- Why two customers may not become one: the first per-kind limit their union would break, or null.
create function merge_conflict(p_a uuid, p_b uuid, p_limits jsonb) returns text
language sql stable
return (
    select format('%s identifiers: %s together, limit %s', d.kind, count(*), (p_limits ->> d.kind))
    from identifier d
    join customer c on c.id = d.customer_id
    where c.root_id in (p_a, p_b) and not d.shared and p_limits ? d.kind
    group by d.kind
    having count(*) > (p_limits ->> d.kind)::integer
    order by d.kind
    limit 1
);

-- Merge the group of p_merged into the group of p_survivor (both resolved to their roots first, locked in id
-- order). Returns the merge id, or null with the reason when it was refused (same customer, or a limit).
create function merge_customers(
    p_survivor     uuid,
    p_merged       uuid,
    p_rule         text,
    p_verification text,
    p_interaction  uuid,
    p_actor        text,
    p_reason       text,
    p_limits       jsonb
) returns table (o_merge_id uuid, o_survivor uuid, o_merged uuid, o_refused text)
language plpgsql
as $$
declare
    v_s uuid;
    v_m uuid;
    v_locked integer;
    v_conflict text;
    v_id uuid;
begin
    for attempt in 1 .. 5 loop
        select root_id into v_s from customer where id = p_survivor;
        select root_id into v_m from customer where id = p_merged;
        if v_s is null or v_m is null then
            return query select null::uuid, v_s, v_m, 'no such customer'::text;
            return;
        end if;
        perform 1 from customer where id in (v_s, v_m) order by id for update;
        -- Still roots once locked? (A concurrent merge may have folded one of them meanwhile.)
        select count(*) into v_locked from customer where id in (v_s, v_m) and root_id = id;
        exit when v_locked = case when v_s = v_m then 1 else 2 end;
    end loop;
    if v_s = v_m then
        return query select null::uuid, v_s, v_m, 'already the same customer'::text;
        return;
    end if;
    v_conflict := merge_conflict(v_s, v_m, p_limits);
    if v_conflict is not null then
        return query select null::uuid, v_s, v_m, v_conflict;
        return;
    end if;
    insert into customer_merge (survivor_id, merged_id, rule, verification, interaction_id, actor, reason)
    values (v_s, v_m, p_rule, p_verification, p_interaction, p_actor, p_reason)
    returning id into v_id;
    update customer set merged_into = v_s where id = v_m;
    update customer set root_id = v_s where root_id = v_m;
    update customer s set display_name = m.display_name
    from customer m where s.id = v_s and m.id = v_m and s.display_name is null;
    update merge_suggestion
    set status = 'accepted', merge_id = v_id, decided_at = now(), decided_by = coalesce(p_actor, p_rule),
        updated_at = now()
    where customer_a = least(v_s, v_m) and customer_b = greatest(v_s, v_m) and status in ('pending', 'conflict');
    return query select v_id, v_s, v_m, null::text;
end;
$$;

-- Undo a merge: the merged customer and everything that had been merged into it before become their own group
-- again. Returns the two customers, or the reason it was refused.
create function undo_customer_merge(p_merge uuid, p_actor text, p_reason text)
returns table (o_survivor uuid, o_merged uuid, o_refused text)
language plpgsql
as $$
declare
    v_merge customer_merge;
begin
    select * into v_merge from customer_merge where id = p_merge for update;
    if not found then
        return query select null::uuid, null::uuid, 'no such merge'::text;
        return;
    end if;
    if v_merge.undone_at is not null then
        return query select v_merge.survivor_id, v_merge.merged_id,
                            format('already undone at %s', v_merge.undone_at);
        return;
    end if;
    perform 1 from customer where id in (v_merge.survivor_id, v_merge.merged_id) order by id for update;
    update customer set merged_into = null where id = v_merge.merged_id;
    with recursive side as (
        select v_merge.merged_id as id
        union
        select c.id from customer c join side on c.merged_into = side.id
    )
    update customer set root_id = v_merge.merged_id where id in (select id from side);
    update customer_merge set undone_at = now(), undone_by = p_actor, undo_reason = p_reason where id = p_merge;
    return query select v_merge.survivor_id, v_merge.merged_id, null::text;
end;
$$;

-- Record that an event named two customers without evidence strong enough to merge them (or with a merge a limit
-- vetoed): one open suggestion per pair, counting the events that support it.
create function suggest_merge(
    p_a uuid, p_b uuid, p_status text, p_verification text, p_conflict text, p_identifiers bigint[],
    p_interaction uuid
) returns void
language sql
begin atomic
    insert into merge_suggestion as s (
        customer_a, customer_b, kind, status, verification, conflict, identifier_ids, interaction_id,
        last_interaction_id
    )
    values (least(p_a, p_b), greatest(p_a, p_b), 'evidence', p_status, p_verification, p_conflict, p_identifiers,
            p_interaction, p_interaction)
    on conflict (customer_a, customer_b, kind) where status in ('pending', 'conflict') do update set
        status = excluded.status,
        conflict = excluded.conflict,
        verification = case when verification_rank(excluded.verification) > verification_rank(s.verification)
                            then excluded.verification else s.verification end,
        identifier_ids = (select array_agg(distinct x order by x)
                          from unnest(s.identifier_ids || excluded.identifier_ids) as x),
        last_interaction_id = excluded.last_interaction_id,
        evidence_count = s.evidence_count + case when s.last_interaction_id = excluded.last_interaction_id
                                                 then 0 else 1 end,
        updated_at = now();
end;

-- The linking rule, run for every stored event (see the README, "Identity"). p_policy carries the settings:
-- merge_min_verification, limits ({"account": 1, ...}) and shared_threshold, and optionally the actor recorded on
-- new links (an import). p_interaction may be null: identifiers known together without an interaction (a CRM
-- contact) link by the same rule.
--  1. Identifiers are upserted in (kind, value) order (concurrent events lock them in one order; two events with
--     the same new identifier wait for each other and create one customer).
--  2. The event's known customer is the one owning its most strongly verified unshared identifier (ties: the
--     oldest customer).
--  3. Unknown identifiers join that customer (rule same-event) or a new one (first-contact), except that
--     * a newcomer verified at or above the merge level does not join a customer recognised only on weaker
--       evidence: it starts a customer of its own (a spoofed caller ID must not pull a stranger in);
--     * a newcomer that would break its kind's limit starts a customer of its own.
--  4. Every other customer the event names is bridged to the interaction's customer: merged when both are named
--     at or above the merge level and no limit forbids it; otherwise a merge suggestion (status conflict when a
--     limit vetoes it).
--  5. A weak identifier owned by another customer than the one this event strongly identifies is recorded as seen
--     with it; seen with shared_threshold distinct customers it becomes shared: it links nobody from then on, and
--     the suggestions it supported are dismissed. Customers strongly identified next to a shared identifier are
--     recorded too: they are the candidates a lookup of it returns.
-- Returns the interaction's customer (a root), or null when no usable identifier remains.

drop function upsert_interaction_event(
    text, text, text, text, text, bigint, timestamptz, timestamptz, timestamptz, text, text, text, text, text, text,
    double precision, double precision, double precision, integer, jsonb, bigint, text[], text[], text[], text, jsonb
);
drop function link_interaction_identifiers(uuid, text[], text[], text[], timestamptz, text);

create function link_interaction_identifiers(
    p_interaction  uuid,
    p_kinds        text[],
    p_values       text[],
    p_levels       text[],
    p_seen_at      timestamptz,
    p_display_name text,
    p_policy       jsonb
) returns uuid
language plpgsql
as $$
declare
    v_min      constant integer := verification_rank(coalesce(p_policy ->> 'merge_min_verification', 'authenticated'));
    v_limits   constant jsonb   := coalesce(p_policy -> 'limits', '{"account": 1}');
    v_shared_n constant integer := coalesce((p_policy ->> 'shared_threshold')::integer, 3);
    v_names    constant text[]  := array['unverified', 'carrier_attested', 'signed', 'authenticated'];
    n          integer := coalesce(cardinality(p_kinds), 0);
    v_ids      bigint[];
    v_kinds    text[];
    v_levels   text[];
    v_ranks    integer[];
    v_owners   uuid[];
    v_roots    uuid[];
    v_shared   boolean[];
    v_created  uuid[] := '{}';
    v_best     integer;
    v_anchor   integer := -1;
    v_target   uuid;
    v_group    uuid;
    v_strong   uuid;
    v_dest     uuid;
    v_dest_root uuid;
    v_root     uuid;
    v_other    uuid;
    v_a        integer;
    v_b        integer;
    v_level    text;
    v_conflict text;
    v_evidence bigint[];
    v_merge    record;
    v_count    integer;
begin
    if n = 0 then
        return null;
    end if;

    -- 1. upsert
    with given as (
        select kind, value, level from unnest(p_kinds, p_values, p_levels) as g (kind, value, level)
    ),
    upserted as (
        insert into identifier as d (kind, value, verification, first_seen, last_seen)
        select kind, value, level, p_seen_at, p_seen_at from given order by kind, value
        on conflict (kind, value) do update set
            first_seen   = least(d.first_seen, excluded.first_seen),
            last_seen    = greatest(d.last_seen, excluded.last_seen),
            verification = case when verification_rank(excluded.verification) > verification_rank(d.verification)
                                then excluded.verification else d.verification end
        returning d.id, d.kind, d.value, d.customer_id, d.shared
    )
    select array_agg(u.id order by u.kind, u.value), array_agg(u.kind order by u.kind, u.value),
           array_agg(g.level order by u.kind, u.value),
           array_agg(verification_rank(g.level) order by u.kind, u.value),
           array_agg(u.customer_id order by u.kind, u.value), array_agg(u.shared order by u.kind, u.value)
    into v_ids, v_kinds, v_levels, v_ranks, v_owners, v_shared
    from upserted u join given g using (kind, value);
    n := cardinality(v_ids);

    -- Roots in a statement of their own: it sees customers committed while step 1 waited for a row lock.
    if array_remove(v_owners, null) = '{}' then
        v_roots := array_fill(null::uuid, array[n]);
    else
        select array_agg(c.root_id order by o.ord) into v_roots
        from unnest(v_owners) with ordinality as o (owner, ord) left join customer c on c.id = o.owner;
    end if;

    -- The common case, one identifier: nothing to bridge, nothing to share, no limit to check.
    if n = 1 then
        if v_shared[1] then
            v_root := null;
        elsif v_owners[1] is not null then
            v_root := v_roots[1];
            if p_display_name is not null then
                update customer set display_name = p_display_name where id = v_root and display_name is null;
            end if;
        else
            insert into customer (display_name) values (p_display_name) returning id into v_root;
            update identifier
            set customer_id = v_root, linked_at = now(), linked_by_interaction = p_interaction,
                link_verification = v_levels[1], linked_by = p_policy ->> 'actor', link_rule = 'first-contact'
            where id = v_ids[1];
        end if;
        if p_interaction is not null then
            insert into interaction_identifier as ii (interaction_id, identifier_id, verification)
            values (p_interaction, v_ids[1], v_levels[1])
            on conflict (interaction_id, identifier_id) do update set verification = excluded.verification
            where verification_rank(excluded.verification) > verification_rank(ii.verification);
        end if;
        return v_root;
    end if;

    -- 2. the known customer
    for i in 1 .. n loop
        if v_owners[i] is not null and not v_shared[i]
           and (v_best is null or v_ranks[i] > v_anchor or (v_ranks[i] = v_anchor and v_roots[i] < v_roots[v_best]))
        then
            v_best := i;
            v_anchor := v_ranks[i];
        end if;
    end loop;
    if v_best is not null then
        v_target := v_owners[v_best];
        v_group := v_roots[v_best];
        if p_display_name is not null then
            update customer set display_name = p_display_name where id = v_group and display_name is null;
        end if;
    end if;

    -- 3. newcomers
    for i in 1 .. n loop
        continue when v_owners[i] is not null or v_shared[i];
        if v_best is not null and v_anchor < v_min and v_ranks[i] >= v_min then
            if v_strong is null then
                insert into customer (display_name) values (p_display_name) returning id into v_strong;
                v_created := v_created || v_strong;
            end if;
            v_dest := v_strong;
            v_dest_root := v_strong;
        else
            if v_target is null then
                insert into customer (display_name) values (p_display_name) returning id into v_target;
                v_created := v_created || v_target;
                v_group := v_target;
            end if;
            v_dest := v_target;
            v_dest_root := v_group;
        end if;
        if v_limits ? v_kinds[i] then
            perform 1 from customer where id = v_dest_root for update;
            select count(*) into v_count
            from identifier d join customer c on c.id = d.customer_id
            where c.root_id = v_dest_root and d.kind = v_kinds[i] and not d.shared;
            if v_count >= (v_limits ->> v_kinds[i])::integer then
                insert into customer (display_name) values (p_display_name) returning id into v_dest;
                v_created := v_created || v_dest;
                v_dest_root := v_dest;
            end if;
        end if;
        update identifier
        set customer_id = v_dest, linked_at = now(), linked_by_interaction = p_interaction,
            link_verification = v_levels[i], linked_by = p_policy ->> 'actor',
            link_rule = case when v_dest = any(v_created) then 'first-contact' else 'same-event' end
        where id = v_ids[i];
        v_owners[i] := v_dest;
        v_roots[i] := v_dest_root;
    end loop;

    -- The interaction's customer: the owner of its strongest usable identifier.
    v_best := null;
    v_anchor := -1;
    for i in 1 .. n loop
        if v_owners[i] is not null and not v_shared[i]
           and (v_best is null or v_ranks[i] > v_anchor or (v_ranks[i] = v_anchor and v_roots[i] < v_roots[v_best]))
        then
            v_best := i;
            v_anchor := v_ranks[i];
        end if;
    end loop;
    v_root := v_roots[v_best];

    -- 4. bridges to every other customer named
    if v_root is not null then
        for v_other in
            select distinct r from unnest(v_roots, v_shared) as t (r, s) where r is not null and not s and r <> v_root
        loop
            select max(rank) filter (where root = v_root), max(rank) filter (where root = v_other),
                   array_agg(id order by id)
            into v_a, v_b, v_evidence
            from unnest(v_ids, v_ranks, v_roots, v_shared) as t (id, rank, root, shared)
            where not shared and root in (v_root, v_other);
            v_level := v_names[least(v_a, v_b)];
            if least(v_a, v_b) >= v_min then
                select * into v_merge
                from merge_customers(least(v_root, v_other), greatest(v_root, v_other), 'strong-evidence', v_level,
                                     p_interaction, null, null, v_limits);
                if v_merge.o_merge_id is not null then
                    v_roots := array_replace(array_replace(v_roots, v_merge.o_merged, v_merge.o_survivor),
                                             v_root, v_merge.o_survivor);
                    v_root := v_merge.o_survivor;
                elsif v_merge.o_refused is distinct from 'already the same customer' then
                    perform suggest_merge(v_root, v_other, 'conflict', v_level, v_merge.o_refused, v_evidence,
                                          p_interaction);
                end if;
            else
                v_conflict := merge_conflict(v_root, v_other, v_limits);
                perform suggest_merge(v_root, v_other, case when v_conflict is null then 'pending' else 'conflict' end,
                                      v_level, v_conflict, v_evidence, p_interaction);
            end if;
        end loop;
    end if;

    -- 5. shared identifiers
    select max(rank) into v_a
    from unnest(v_ranks, v_roots, v_shared) as t (rank, root, shared) where root = v_root and not shared;
    if v_a >= v_min then
        for i in 1 .. n loop
            if v_shared[i] then
                -- Already shared: keep the list of candidates a lookup returns complete.
                insert into identifier_usage (identifier_id, customer_id, interaction_id)
                values (v_ids[i], v_root, p_interaction)
                on conflict do nothing;
                continue;
            end if;
            continue when v_owners[i] is null or v_ranks[i] >= v_min or v_roots[i] = v_root;
            insert into identifier_usage (identifier_id, customer_id, interaction_id)
            values (v_ids[i], v_owners[i], null), (v_ids[i], v_root, p_interaction)
            on conflict do nothing;
            select count(distinct c.root_id) into v_count
            from identifier_usage u join customer c on c.id = u.customer_id
            where u.identifier_id = v_ids[i];
            if v_count >= v_shared_n then
                update identifier set shared = true, shared_at = now() where id = v_ids[i];
                update merge_suggestion
                set status = 'dismissed', decided_at = now(), decided_by = 'shared-identifier', updated_at = now(),
                    decision_reason = format('identifier %s is shared by %s customers', v_ids[i], v_count)
                where status in ('pending', 'conflict') and v_ids[i] = any(identifier_ids);
                v_shared[i] := true;
            end if;
        end loop;
    end if;

    if p_interaction is not null then
        insert into interaction_identifier as ii (interaction_id, identifier_id, verification)
        select p_interaction, identifier_id, level from unnest(v_ids, v_levels) as t (identifier_id, level)
        on conflict (interaction_id, identifier_id) do update set verification = excluded.verification
        where verification_rank(excluded.verification) > verification_rank(ii.verification);
    end if;

    return v_root;
end;
$$;

-- Storing one event's interaction (0004's upsert without the identity part, which the ingest statement now calls
-- itself with the identity policy). Returns nothing for a duplicate.
create function upsert_interaction_event(
    p_source             text,
    p_external_id        text,
    p_channel            text,
    p_direction          text,
    p_status             text,
    p_revision           bigint,
    p_occurred_at        timestamptz,
    p_answered_at        timestamptz,
    p_ended_at           timestamptz,
    p_agent              text,
    p_queue              text,
    p_thread_key         text,
    p_subject            text,
    p_reason             text,
    p_disposition        text,
    p_queue_wait_seconds double precision,
    p_hold_seconds       double precision,
    p_talk_seconds       double precision,
    p_transfer_count     integer,
    p_event              jsonb,
    p_raw_event_id       bigint,
    p_identified         boolean,
    p_redactions         jsonb
) returns table (o_interaction_id uuid, o_created boolean, o_occurred_at timestamptz)
language plpgsql
as $$
begin
    return query
    with upserted as (
        insert into interaction as i (
            source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
            agent, queue, thread_key, subject, reason, disposition,
            queue_wait_seconds, hold_seconds, talk_seconds, transfer_count, event, raw_event_id, identified,
            redactions
        )
        values (p_source, p_external_id, p_channel, p_direction, p_status, p_revision, p_occurred_at,
                p_answered_at, p_ended_at, p_agent, p_queue, p_thread_key, p_subject, p_reason, p_disposition,
                p_queue_wait_seconds, p_hold_seconds, p_talk_seconds, p_transfer_count, p_event, p_raw_event_id,
                p_identified, p_redactions)
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
        returning i.id, (i.xmax = 0) as created, i.occurred_at
    )
    select u.id, u.created, u.occurred_at from upserted u;
end;
$$;
