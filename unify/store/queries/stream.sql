-- name: customer_root
-- The customer a stream filtered by `customer_id` follows: the root of $1's merge group (itself unless merged),
-- or no row for an unknown id.
select root_id from customer where id = $1;
