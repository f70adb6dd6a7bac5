-- name: get_interaction
-- The customer of an interaction is derived from its identifiers' current links, never stored on it
-- (interaction_customer, migration 0007).
select i.id, i.identified, i.received_at, i.updated_at, i.raw_event_id, i.event, interaction_customer(i.id) as customer_id
from interaction i
where i.id = $1;

-- name: get_customer
select id, display_name, created_at from customer where id = $1;

-- name: get_customer_identifiers
select id, kind, value, verification, first_seen, last_seen, linked_at, link_rule, linked_by_interaction
from identifier
where customer_id = $1
order by kind, value;
