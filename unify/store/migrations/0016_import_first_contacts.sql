-- unify: an import links the first contacts of identifiers it has never seen in bulk, not one row at a time.
-- Most rows of an import that the linking rule had to take one by one (migration 0009) name only identifiers nobody
-- knew before their chunk: a caller's first call, a sender's first email, a first login naming an account and a phone
-- together. When the chunk names those identifiers nowhere else but in rows naming exactly the same ones, nothing
-- else in the chunk can touch them, and the rule's outcome for those rows is known in advance (0007's newcomers with
-- no known customer, 0012's one-identifier path, applied in file order):
-- * one new customer for the set, named by the first of its rows that carries a display name;
-- * each identifier linked to it by the first row ('first-contact', that row's interaction and the level it gave),
--   seen from the earliest to the latest of the rows, at the strongest level any of them gave;
-- * each row's interaction linked to each identifier at the level that row gave.
-- Unless the set holds more identifiers of a kind than its limit allows (two account numbers): the rule splits those,
-- and takes them itself.
-- These rows now take the 'first' way: all of a chunk's such sets are written in a few statements after the rule has
-- taken the other rows. Which customer or identifier came first still decides ties later on (the survivor of a
-- merge, the customer an event names among equals, the owner of an interaction), so their ids are drawn during the
-- rule's pass, at the position of each set's first row, the identifiers' in (kind, value) order as the rule inserts
-- them: ids follow file order exactly as when every row went through the rule. A set one of whose identifiers another
-- transaction inserted meanwhile (streaming ingest during an import) is left to the rule, row by row, without the
-- customer and identifiers made for it, as 0012 does.

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
    v_names    constant text[] := array['unverified', 'carrier_attested', 'signed', 'authenticated'];
    v_limits   constant jsonb  := coalesce(p_policy -> 'limits', '{"account": 1}');
    v_sequence constant text   := pg_get_serial_sequence('identifier', 'id');
    v_started timestamptz := clock_timestamp();
    v_ids bigint[];
    -- the 'first' sets, by their first row: its ord and the new customer's id
    v_sets integer := 0;
    v_set_ords integer[] := '{}';
    v_set_customers uuid[] := '{}';
    -- their identifiers' ids: set (first row's ord), position in (kind, value) order, id
    v_drawn integer := 0;
    v_id_ords integer[] := '{}';
    v_id_positions integer[] := '{}';
    v_id_values bigint[] := '{}';
    r record;
begin
    -- Each row's identifiers with what is known of them before this chunk. Every lookup is by index, one per
    -- identifier (lateral, scalar subqueries): joined, the planner would scan the whole tables for each chunk.
    -- `alone`: every row of the chunk naming the identifier names the same set of identifiers (kinds and values,
    -- sorted by normalization); `within_limit`: the row names no more identifiers of its kind than the limit.
    create temp table import_ident on commit drop as
    select i.*,
           min(i.row_kinds) over identifier = max(i.row_kinds) over identifier
               and min(i.row_values) over identifier = max(i.row_values) over identifier as alone,
           count(*) over (partition by i.ord, i.kind) <= coalesce((v_limits ->> i.kind)::integer, 2147483647)
               as within_limit,
           -- Whether the group has a name matters only to a row that brings one.
           case when i.display_name is not null
                then (select g.display_name is not null from customer g where g.id = i.root_id) end as named
    from (
        select l.ord, l.display_name, t.kind, t.value, t.level, verification_rank(t.level) as rank,
               d.id as identifier_id, d.customer_id, d.shared,
               (select c.root_id from customer c where c.id = d.customer_id) as root_id,
               l.kinds as row_kinds, l.vals as row_values
        from import_link l
        cross join lateral unnest(l.kinds, l.vals, l.levels) as t (kind, value, level)
        left join lateral (
            select d.id, d.customer_id, d.shared from identifier d where d.kind = t.kind and d.value = t.value limit 1
        ) as d on true
        offset 0
    ) as i
    window identifier as (partition by i.kind, i.value);
    analyze import_ident;

    -- How the rule would treat each row: 'first' when all it names is a set of identifiers nobody knew, named only
    -- together wherever the chunk names them (see the top of this file); 'new' when it names an identifier nobody
    -- owns (unknown, or unlinked and unshared), 'bridge' when it names several groups, 'shared' when it names a
    -- shared identifier among others (the rule records who was seen next to it), 'name' when its display name would
    -- fill an empty one; otherwise 'recorded': a single shared identifier, or identifiers all owned by one group,
    -- which has a name if it brings one. `opener`: the first row of a 'first' row's set.
    create temp table import_way on commit drop as
    select w.*,
           case when w.way = 'first' then min(w.ord) over (partition by w.way, w.kinds, w.vals) end as opener
    from (
        select i.ord, min(i.row_kinds) as kinds, min(i.row_values) as vals,
               case when bool_and(i.identifier_id is null and i.alone and i.within_limit) then 'first'
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

    -- The rule, row by row in file order; the ids of each 'first' set's customer and identifiers drawn where its
    -- first row stands.
    v_started := clock_timestamp();
    for r in
        select l.interaction_id, l.kinds, l.vals, l.levels, l.seen_at, l.display_name, l.ord, w.way
        from import_link l
        join import_way w on w.ord = l.ord and (w.way not in ('recorded', 'first') or w.opener = w.ord)
        order by l.ord
    loop
        if r.way = 'first' then
            v_sets := v_sets + 1;
            v_set_ords[v_sets] := r.ord;
            v_set_customers[v_sets] := uuidv7();
            for k in 1 .. cardinality(r.kinds) loop
                v_drawn := v_drawn + 1;
                v_id_ords[v_drawn] := r.ord;
                v_id_positions[v_drawn] := k;
                v_id_values[v_drawn] := nextval(v_sequence);
            end loop;
        else
            perform link_interaction_identifiers(r.interaction_id, r.kinds, r.vals, r.levels, r.seen_at,
                                                 r.display_name, p_policy);
        end if;
    end loop;
    o_link_ms := extract(epoch from clock_timestamp() - v_started) * 1000;

    v_started := clock_timestamp();
    if v_sets > 0 then
        -- The sets' identifiers, each with its set, its id, and what its rows saw of it.
        create temp table import_first on commit drop as
        select a.*, n.identifier_id
        from (
            select w.opener, i.kind, i.value, min(l.seen_at) as first_seen, max(l.seen_at) as last_seen,
                   max(i.rank) as rank, (array_agg(i.level order by i.ord))[1] as link_level,
                   (array_agg(l.interaction_id order by i.ord))[1] as interaction_id,
                   row_number() over (partition by w.opener order by i.kind, i.value) as position
            from import_way w
            join import_ident i on i.ord = w.ord
            join import_link l on l.ord = w.ord
            where w.way = 'first'
            group by w.opener, i.kind, i.value
        ) as a
        join unnest(v_id_ords, v_id_positions, v_id_values) as n (opener, position, identifier_id)
            on n.opener = a.opener and n.position = a.position;

        insert into customer (id, display_name)
        select n.customer_id, d.display_name
        from unnest(v_set_ords, v_set_customers) as n (opener, customer_id)
        join (
            select w.opener,
                   (array_agg(l.display_name order by l.ord) filter (where l.display_name is not null))[1]
                       as display_name
            from import_way w join import_link l on l.ord = w.ord
            where w.way = 'first'
            group by w.opener
        ) as d on d.opener = n.opener
        order by n.customer_id;
        with linked as (
            insert into identifier (id, kind, value, verification, first_seen, last_seen, customer_id, linked_at,
                                    linked_by_interaction, link_verification, linked_by, link_rule)
            overriding system value
            select f.identifier_id, f.kind, f.value, v_names[f.rank], f.first_seen, f.last_seen, n.customer_id,
                   now(), f.interaction_id, f.link_level, p_policy ->> 'actor', 'first-contact'
            from import_first f
            join unnest(v_set_ords, v_set_customers) as n (opener, customer_id) on n.opener = f.opener
            order by f.kind, f.value
            on conflict (kind, value) do nothing
            returning kind, value
        )
        update import_way w set way = 'raced'
        where w.way = 'first'
          and exists (select from import_first f
                      where f.opener = w.opener
                        and not exists (select from linked k where k.kind = f.kind and k.value = f.value));
        if found then
            -- Inserted by another transaction since the chunk was classified: the rule takes these sets' rows, without
            -- the identifiers and customers made for them.
            delete from identifier d
            using import_first f, import_way w
            where w.way = 'raced' and w.ord = w.opener and f.opener = w.opener and d.id = f.identifier_id;
            delete from customer c
            using unnest(v_set_ords, v_set_customers) as n (opener, customer_id), import_way w
            where w.way = 'raced' and w.ord = n.opener and c.id = n.customer_id;
            delete from import_first f using import_way w where w.way = 'raced' and w.ord = f.opener;
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
