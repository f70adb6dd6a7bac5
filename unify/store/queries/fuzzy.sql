-- name: candidates
-- Pairs of root customers (customer_a < customer_b) whose names (customer.name_key) share enough trigrams
-- (pg_trgm's `%`, at the threshold pg_trgm.similarity_threshold the caller sets), through the index of 0008.
-- Blocking: each root keeps only its $1 nearest names, so a very common name costs at most $1 pairs per customer.
-- Names made only of the placeholder words $2 ('guest', 'visitor', …) are left out. So are pairs a person has
-- already decided on or is asked about: a fuzzy suggestion of any status but dismissed, an open or rejected
-- evidence suggestion, or a merge of the two that was undone; suggestions and merges are matched through the
-- current roots of the customers they name. Most similar first; at most $3 pairs (null: all).
with named as (
    select c.id, c.name_key as key
    from customer c
    where c.root_id = c.id and c.name_key is not null and not string_to_array(c.name_key, ' ') <@ $2::text[]
),
near as (
    select least(r.id, n.id) as customer_a, greatest(r.id, n.id) as customer_b, n.similarity
    from named r
    cross join lateral (
        select c.id, similarity(c.name_key, r.key) as similarity
        from customer c
        where c.root_id = c.id and c.id <> r.id and c.name_key % r.key
          and not string_to_array(c.name_key, ' ') <@ $2::text[]
        order by similarity desc, c.id
        limit $1
    ) n
),
decided as (
    select least(ca.root_id, cb.root_id) as customer_a, greatest(ca.root_id, cb.root_id) as customer_b
    from merge_suggestion s
    join customer ca on ca.id = s.customer_a
    join customer cb on cb.id = s.customer_b
    where (s.kind = 'fuzzy' and s.status <> 'dismissed')
       or (s.kind = 'evidence' and s.status in ('pending', 'conflict', 'rejected'))
    union
    select least(cs.root_id, cm.root_id), greatest(cs.root_id, cm.root_id)
    from customer_merge m
    join customer cs on cs.id = m.survivor_id
    join customer cm on cm.id = m.merged_id
    where m.undone_at is not null
)
select p.customer_a, p.customer_b, max(p.similarity) as similarity
from near p
where not exists (
    select 1 from decided d where d.customer_a = p.customer_a and d.customer_b = p.customer_b
)
group by p.customer_a, p.customer_b
order by similarity desc, p.customer_a, p.customer_b
limit $3;

-- name: group_names
-- Every display name in the groups of the roots $1 (a merged customer keeps its own), with how many root customers
-- have it (in its compared form, customer.name_key).
with names as (
    select c.root_id, c.display_name, c.name_key
    from customer c
    where c.root_id = any($1::uuid[]) and c.display_name is not null
),
holders as (
    select o.name_key, count(*) as holders
    from customer o
    where o.root_id = o.id and o.name_key = any(array(select distinct name_key from names where name_key is not null))
    group by o.name_key
)
select n.root_id, n.display_name, coalesce(h.holders, 0)::integer as holders
from names n
left join holders h on h.name_key = n.name_key;

-- name: group_identifiers
-- The unshared email addresses and phone numbers linked to the groups of the roots $1.
select c.root_id, d.id, d.kind, d.value
from identifier d
join customer c on c.id = d.customer_id
where c.root_id = any($1::uuid[]) and d.kind in ('email', 'phone') and not d.shared
order by c.root_id, d.id;

-- name: group_threads
-- The conversation threads (interaction.thread_key) the groups of the roots $1 took part in, through their unshared
-- identifiers.
select distinct c.root_id, i.thread_key
from customer c
join identifier d on d.customer_id = c.id and not d.shared
join interaction_identifier ii on ii.identifier_id = d.id
join interaction i on i.id = ii.interaction_id
where c.root_id = any($1::uuid[]) and i.thread_key is not null;

-- name: insert_suggestions
-- Record scored pairs ($1: [{customer_a, customer_b, score, reasons, identifier_ids}]) as fuzzy suggestions:
-- 'conflict' (with the veto) when merge_conflict says the union would break a limit of $2, 'pending' otherwise.
-- A pair no longer made of two roots (merged meanwhile) or already open is skipped. Returns the statuses written.
insert into merge_suggestion as s (customer_a, customer_b, kind, status, score, conflict, reasons, identifier_ids)
select t.customer_a, t.customer_b, 'fuzzy', case when v.conflict is null then 'pending' else 'conflict' end,
       t.score, v.conflict, t.reasons, t.identifier_ids
from jsonb_to_recordset($1::jsonb)
     as t (customer_a uuid, customer_b uuid, score double precision, reasons jsonb, identifier_ids bigint[])
cross join lateral (select merge_conflict(t.customer_a, t.customer_b, $2::jsonb) as conflict) v
where t.customer_a < t.customer_b
  and exists (select 1 from customer c where c.id = t.customer_a and c.root_id = c.id)
  and exists (select 1 from customer c where c.id = t.customer_b and c.root_id = c.id)
on conflict (customer_a, customer_b, kind) where status in ('pending', 'conflict') do nothing
returning s.status;
