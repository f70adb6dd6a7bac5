-- name: customer_root
-- The customer a stream filtered by `customer_id` follows: the root of $1's merge group (itself unless merged),
-- or no row for an unknown id.
select root_id from customer where id = $1;

-- name: identifier_roots
-- The customers a stream filtered by identifiers follows: the roots of the groups owning the identifiers $1 (kinds)
-- and $2 (normalized values), shared ones left out (they point at nobody in particular).
select distinct c.root_id
from unnest($1::text[], $2::text[]) as x (kind, value)
join identifier d on d.kind = x.kind and d.value = x.value and not d.shared
join customer c on c.id = d.customer_id;

-- name: interaction_notices
-- The notices (migration 0011, interaction_notice) of interactions $1 with their changes $2, in the order given;
-- null for one deleted since.
select interaction_notice(n.id, n.change) as notice
from unnest($1::uuid[], $2::text[]) with ordinality as n (id, change, position)
order by n.position;
