-- name: customer_root
-- The customer a stream filtered by `customer_id` follows: the root of $1's merge group (itself unless merged),
-- or no row for an unknown id.
select root_id from customer where id = $1;

-- name: interaction_notices
-- The notices (migration 0011, interaction_notice) of interactions $1 with their changes $2, in the order given;
-- null for one deleted since.
select interaction_notice(n.id, n.change) as notice
from unnest($1::uuid[], $2::text[]) with ordinality as n (id, change, position)
order by n.position;
