-- name: get_interaction
-- The customer of an interaction is derived from its identifiers' current links, never stored on it
-- (interaction_customer, migration 0007).
select i.id, i.identified, i.received_at, i.updated_at, i.raw_event_id, i.event, interaction_customer(i.id) as customer_id
from interaction i
where i.id = $1;

-- name: get_customer
-- A customer as it stands now: the root of `$1`'s group (itself unless it was merged into another), with the
-- other customers merged into it.
select r.id, r.display_name, r.created_at,
       coalesce((select array_agg(m.id order by m.id) from customer m where m.root_id = r.id and m.id <> r.id),
                '{}') as merged_customer_ids
from customer c
join customer r on r.id = c.root_id
where c.id = $1;

-- name: get_customer_identifiers
-- Every identifier of the group of root $1.
select d.id, d.kind, d.value, d.verification, d.first_seen, d.last_seen, d.linked_at, d.link_rule,
       d.linked_by_interaction, d.shared
from identifier d
join customer c on c.id = d.customer_id
where c.root_id = $1
order by d.kind, d.value;
