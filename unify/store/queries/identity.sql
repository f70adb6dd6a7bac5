-- Identity: explaining a customer, merges and their undo, detaching identifiers, suggestions, lookups
-- (unify/identity/merges.py). The rule that links events is link_interaction_identifiers (migration 0007).

-- name: customer_root
-- The customer standing for the group `$1` belongs to (itself unless it was merged into another).
select root_id from customer where id = $1;

-- name: group_members
select id, display_name, created_at, merged_into from customer where root_id = $1 order by id;

-- name: group_identifiers
select d.id, d.kind, d.value, d.verification, d.first_seen, d.last_seen, d.shared, d.customer_id,
       d.link_rule, d.linked_at, d.link_verification, d.linked_by_interaction, d.linked_by
from identifier d
join customer c on c.id = d.customer_id
where c.root_id = $1
order by d.kind, d.value;

-- name: merges_naming
-- Every merge (undone ones too) that names one of the customers $1.
select id, survivor_id, merged_id, rule, verification, interaction_id, actor, reason, merged_at, undone_at,
       undone_by, undo_reason
from customer_merge
where survivor_id = any($1::uuid[]) or merged_id = any($1::uuid[])
order by merged_at, id;

-- name: get_merge
select id, survivor_id, merged_id, rule, verification, interaction_id, actor, reason, merged_at, undone_at,
       undone_by, undo_reason
from customer_merge
where id = $1;

-- name: merge_customers
-- A merge a person asks for: $1 survivor, $2 merged, $3 rule, $4 actor, $5 reason, $6 per-kind limits. `by_person`:
-- an earlier decision keeping them apart does not stop it (migration 0020); the limits still do.
select o_merge_id as merge_id, o_survivor as survivor_id, o_merged as merged_id, o_refused as refused
from merge_customers($1, $2, $3, null, null, $4, $5, $6::jsonb || '{"by_person": true}');

-- name: undo_merge
select o_survivor as survivor_id, o_merged as merged_id, o_refused as refused
from undo_customer_merge($1, $2, $3);

-- name: open_suggestions_naming
-- Open suggestions naming one of the customers $1, with both sides as they stand now; stale ones (both sides
-- merged since) left out.
select s.*, ca.root_id as root_a, cb.root_id as root_b
from merge_suggestion s
join customer ca on ca.id = s.customer_a
join customer cb on cb.id = s.customer_b
where (s.customer_a = any($1::uuid[]) or s.customer_b = any($1::uuid[]))
  and s.status in ('pending', 'conflict')
  and ca.root_id <> cb.root_id
order by s.created_at, s.id;

-- name: list_suggestions
-- $1 statuses (null: all), $2 kind (null: both), $3 page before this id (null: from the newest), $4 page size.
select s.*, ca.root_id as root_a, cb.root_id as root_b
from merge_suggestion s
join customer ca on ca.id = s.customer_a
join customer cb on cb.id = s.customer_b
where ($1::text[] is null or s.status = any($1::text[]))
  and ($2::text is null or s.kind = $2)
  and ($3::uuid is null or s.id < $3)
  and (s.status not in ('pending', 'conflict') or ca.root_id <> cb.root_id)
order by s.id desc
limit $4;

-- name: lock_suggestion
select s.*, ca.root_id as root_a, cb.root_id as root_b
from merge_suggestion s
join customer ca on ca.id = s.customer_a
join customer cb on cb.id = s.customer_b
where s.id = $1
for update of s;

-- name: get_suggestion
select s.*, ca.root_id as root_a, cb.root_id as root_b
from merge_suggestion s
join customer ca on ca.id = s.customer_a
join customer cb on cb.id = s.customer_b
where s.id = $1;

-- name: decide_suggestion
-- $2 status (accepted/rejected), $3 actor, $4 reason, $5 the merge (accepted).
update merge_suggestion
set status = $2, decided_at = now(), decided_by = $3, decision_reason = $4, merge_id = coalesce($5, merge_id),
    updated_at = now()
where id = $1;

-- name: lock_identifier
select d.id, d.kind, d.customer_id, c.root_id
from identifier d
left join customer c on c.id = d.customer_id
where d.id = $1
for update of d;

-- name: new_customer
insert into customer (display_name) values ($1) returning id;

-- name: kind_count_in_group
-- How many unshared identifiers of kind $2 the group of root $1 holds.
select count(*)
from identifier d
join customer c on c.id = d.customer_id
where c.root_id = $1 and d.kind = $2 and not d.shared;

-- name: move_identifier
-- $1 identifier, $2 its new customer, $3 who, $4 why.
update identifier
set customer_id = $2, linked_at = now(), link_rule = 'detached', link_verification = verification,
    linked_by_interaction = null, linked_by = $3, link_reason = $4
where id = $1;

-- name: lookup_identifier
-- One identifier by kind and normalized value, its customer, and for a shared one every customer seen with it.
select d.id, d.verification, d.shared, c.root_id,
       case when d.shared then
           (select array_agg(distinct c2.root_id order by c2.root_id)
            from identifier_usage u join customer c2 on c2.id = u.customer_id
            where u.identifier_id = d.id)
       end as candidates
from identifier d
left join customer c on c.id = d.customer_id
where d.kind = $1 and d.value = $2;
