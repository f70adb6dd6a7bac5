-- unify: an import links the first contacts of identifiers it has never seen in bulk, not one row at a time.
-- Most rows of an import that the linking rule had to take one by one (migration 0009) name a single identifier
-- nobody knew before their chunk: a caller's first call, a sender's first email. When no other row of the chunk
-- names that identifier together with another one, nothing else in the chunk can touch it, and the rule's outcome
-- for its rows is known in advance (0012's one-identifier path, applied in file order):
-- * one new customer, named by the first of those rows that carries a display name;
-- * the identifier linked to it by the first row ('first-contact', that row's interaction and level), seen from the
--   earliest to the latest of them, at the strongest level any of them gave;
-- * each row's interaction linked to it at the level that row gave.
-- These rows now take the 'first' way: all of a chunk's such identifiers are written in three statements after the
-- rule has taken the other rows. Which customer or identifier came first still decides ties later on (the survivor
-- of a merge, the customer an event names among equals, the owner of an interaction), so their ids are drawn during
-- the rule's pass, at the position of each identifier's first row: ids follow file order exactly as when every row
-- went through the rule. An identifier another transaction inserted meanwhile (streaming ingest during an import)
-- is left to the rule, row by row, and the customer made for it is removed, as 0012 does.

create or replace function import_link_staged(
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
set unify.links_in_bulk = 'on'
as $$
declare
    v_names constant text[] := array['unverified', 'carrier_attested', 'signed', 'authenticated'];
    v_sequence constant text := pg_get_serial_sequence('identifier', 'id');
    v_started timestamptz := clock_timestamp();
    v_ids bigint[];
    v_first_ords integer[] := '{}';
    v_customer_ids uuid[] := '{}';
    v_identifier_ids bigint[] := '{}';
    v_firsts integer := 0;
    r record;
begin
    -- Each row's identifiers with what is known of them before this chunk. Every lookup is by index, one per
    -- identifier (lateral, scalar subqueries): joined, the planner would scan the whole tables for each chunk.
    -- `solo`: the identifier is named only by rows naming nothing else.
    create temp table import_ident on commit drop as
    select i.*,
           max(i.row_identifiers) over (partition by i.kind, i.value) = 1 as solo,
           -- Whether the group has a name matters only to a row that brings one.
           case when i.display_name is not null
                then (select g.display_name is not null from customer g where g.id = i.root_id) end as named
    from (
        select l.ord, l.display_name, t.kind, t.value, t.level, verification_rank(t.level) as rank,
               d.id as identifier_id, d.customer_id, d.shared,
               (select c.root_id from customer c where c.id = d.customer_id) as root_id,
               cardinality(l.kinds) as row_identifiers
        from import_link l
        cross join lateral unnest(l.kinds, l.vals, l.levels) as t (kind, value, level)
        left join lateral (
            select d.id, d.customer_id, d.shared from identifier d where d.kind = t.kind and d.value = t.value limit 1
        ) as d on true
        offset 0
    ) as i;
    analyze import_ident;

    -- How the rule would treat each row: 'first' when it names one identifier nobody knew, named alone wherever the
    -- chunk names it (see the top of this file); 'new' when it names an identifier nobody owns (unknown, or unlinked
    -- and unshared), 'bridge' when it names several groups, 'shared' when it names a shared identifier among others
    -- (the rule records who was seen next to it), 'name' when its display name would fill an empty one; otherwise
    -- 'recorded': a single shared identifier, or identifiers all owned by one group, which has a name if it brings
    -- one. `opens`: the first row of its 'first' identifier.
    create temp table import_way on commit drop as
    select w.*,
           w.way = 'first' and row_number() over (partition by w.way, w.kind, w.value order by w.ord) = 1 as opens
    from (
        select i.ord, min(i.kind) as kind, min(i.value) as value,
               case when count(*) = 1 and bool_and(i.identifier_id is null and i.solo) then 'first'
                    when not bool_and(i.identifier_id is not null and (i.shared or i.customer_id is not null))
                    then 'new'
                    when count(distinct i.root_id) filter (where not i.shared) > 1 then 'bridge'
                    when count(*) > 1 and bool_or(i.shared) then 'shared'
                    when i.display_name is not null and not coalesce(bool_or(i.named) filter (where not i.shared), true)
                    then 'name'
                    else 'recorded' end as way
        from import_ident i
        group by i.ord, i.display_name
    ) as w;
    alter table import_way add primary key (ord);
    analyze import_way;
    o_classify_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    -- The rule, row by row in file order; the ids of the 'first' identifiers and their customers drawn where their
    -- first row stands.
    v_started := clock_timestamp();
    for r in
        select l.interaction_id, l.kinds, l.vals, l.levels, l.seen_at, l.display_name, l.ord, w.way
        from import_link l
        join import_way w on w.ord = l.ord and (w.way not in ('recorded', 'first') or w.opens)
        order by l.ord
    loop
        if r.way = 'first' then
            v_firsts := v_firsts + 1;
            v_first_ords[v_firsts] := r.ord;
            v_customer_ids[v_firsts] := uuidv7();
            v_identifier_ids[v_firsts] := nextval(v_sequence);
        else
            perform link_interaction_identifiers(r.interaction_id, r.kinds, r.vals, r.levels, r.seen_at,
                                                 r.display_name, p_policy);
        end if;
    end loop;
    o_link_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    v_started := clock_timestamp();

    if v_firsts > 0 then
        create temp table import_first on commit drop as
        select w.kind, w.value, n.customer_id, n.identifier_id, l.interaction_id, l.levels[1] as level,
               a.first_seen, a.last_seen, a.rank, a.display_name
        from unnest(v_first_ords, v_customer_ids, v_identifier_ids) as n (ord, customer_id, identifier_id)
        join import_way w on w.ord = n.ord
        join import_link l on l.ord = n.ord
        join (
            select w.kind, w.value, min(l.seen_at) as first_seen, max(l.seen_at) as last_seen,
                   max(verification_rank(l.levels[1])) as rank,
                   (array_agg(l.display_name order by l.ord) filter (where l.display_name is not null))[1]
                       as display_name
            from import_way w join import_link l on l.ord = w.ord
            where w.way = 'first'
            group by w.kind, w.value
        ) as a on a.kind = w.kind and a.value = w.value;

        insert into customer (id, display_name)
        select customer_id, display_name from import_first order by customer_id;
        with linked as (
            insert into identifier (id, kind, value, verification, first_seen, last_seen, customer_id, linked_at,
                                    linked_by_interaction, link_verification, linked_by, link_rule)
            overriding system value
            select identifier_id, kind, value, v_names[rank], first_seen, last_seen, customer_id, now(),
                   interaction_id, level, p_policy ->> 'actor', 'first-contact'
            from import_first
            order by kind, value
            on conflict (kind, value) do nothing
            returning kind, value
        )
        update import_way w set way = 'raced'
        where w.way = 'first' and not exists (select from linked k where k.kind = w.kind and k.value = w.value);
        if found then
            -- Inserted by another transaction since the chunk was classified: the rule takes these rows, without the
            -- customers made for nothing.
            with raced as (
                delete from import_first f
                using import_way w
                where w.opens and w.way = 'raced' and w.kind = f.kind and w.value = f.value
                returning f.customer_id
            )
            delete from customer c where c.id in (select customer_id from raced);
            for r in
                select l.interaction_id, l.kinds, l.vals, l.levels, l.seen_at, l.display_name
                from import_link l
                join import_way w on w.ord = l.ord and w.way = 'raced'
                order by l.ord
            loop
                perform link_interaction_identifiers(r.interaction_id, r.kinds, r.vals, r.levels, r.seen_at,
                                                     r.display_name, p_policy);
            end loop;
        end if;
        -- Their rows' links are recorded with the others below.
        update import_ident i set identifier_id = f.identifier_id
        from import_first f
        where i.kind = f.kind and i.value = f.value and i.identifier_id is null;
    end if;

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
    join import_way w on w.ord = i.ord and w.way in ('recorded', 'first')
    join import_link l on l.ord = i.ord
    where l.interaction_id is not null
    group by l.interaction_id, i.identifier_id
    on conflict (interaction_id, identifier_id) do update set verification = excluded.verification
    where verification_rank(excluded.verification) > verification_rank(ii.verification);
    o_record_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    -- The rows linked as first contacts are counted by the importer, from import_way (kept until the end of the
    -- transaction: the functions calling this one return the other counts).
    select count(*) filter (where way = 'recorded'), count(*) filter (where way not in ('recorded', 'first')),
           count(*) filter (where way in ('new', 'raced')), count(*) filter (where way = 'bridge')
    into o_recorded, o_linked, o_linked_new, o_linked_bridge
    from import_way;
    drop table import_ident;
    drop table if exists import_first;
end;
$$;
