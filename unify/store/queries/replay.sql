-- name: select_raw_events
-- Raw deliveries to replay, oldest first: statuses $1; optional ids $2, routes $3, received in [$4, $5); at most $6.
-- Uses raw_event_unprocessed (route, received_at) for the usual selection (not processed).
select id, route, status, received_at from raw_event
where status = any($1::text[])
  and ($2::bigint[] is null or id = any($2::bigint[]))
  and ($3::text[] is null or route = any($3::text[]))
  and ($4::timestamptz is null or received_at >= $4)
  and ($5::timestamptz is null or received_at < $5)
order by id
limit $6;

-- name: lock_raw_event
-- One raw delivery, locked for the transaction that replays it (two replays of one row never both apply it).
select id, route, content_type, headers, body, body_size, truncated, received_at, status, error, key_id, event_keys
from raw_event where id = $1
for update;

-- name: mark_raw_event_processed
-- Replayed: the row now names the events it carried ($2), like a delivery processed when it arrived.
update raw_event set status = 'processed', error = null, processed_at = now(), event_keys = $2 where id = $1;

-- name: mark_raw_event_failing
-- Replayed and still failing: the new status ($2: rejected, unverified or failed) and error ($3).
update raw_event set status = $2, error = $3 where id = $1;
