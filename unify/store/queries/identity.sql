-- name: upsert_identifiers
-- Input arrays are sorted by (kind, value), so concurrent events lock identifier rows in one order.
insert into identifier as d (kind, value, verification, first_seen, last_seen)
select kind, value, verification, $4, $4
from unnest($1::text[], $2::text[], $3::text[]) as u (kind, value, verification)
on conflict (kind, value) do update set
    first_seen   = least(d.first_seen, excluded.first_seen),
    last_seen    = greatest(d.last_seen, excluded.last_seen),
    verification = case
        when array_position(array['unverified', 'carrier_attested', 'signed', 'authenticated'], excluded.verification)
           > array_position(array['unverified', 'carrier_attested', 'signed', 'authenticated'], d.verification)
        then excluded.verification else d.verification end
returning id, kind, value, customer_id;

-- name: create_customer
insert into customer (display_name) values ($1) returning id;

-- name: fill_customer_display_name
update customer set display_name = $2 where id = $1 and display_name is null;

-- name: link_unlinked_identifiers
update identifier
set customer_id = $2, linked_at = now(), link_rule = $3, linked_by_interaction = $4
where id = any($1::bigint[]) and customer_id is null;

-- name: attach_identifiers_to_interaction
insert into interaction_identifier (interaction_id, identifier_id, verification)
select $1, identifier_id, verification
from unnest($2::bigint[], $3::text[]) as u (identifier_id, verification)
on conflict (interaction_id, identifier_id) do update set verification = excluded.verification;
