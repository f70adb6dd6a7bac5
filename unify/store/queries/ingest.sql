-- name: insert_raw_event
-- $4 is the body as stored: encrypted under key $9 (null: in the clear); $10 the keys of the events it carried.
insert into raw_event (
    route, content_type, headers, body, body_size, truncated, status, error, processed_at, key_id, event_keys
)
values ($1, $2, $3, $4, $5, $6, $7, $8, case when $7 = 'processed' then now() end, $9, $10)
returning id;

-- name: upsert_interaction
-- See upsert_interaction_event (migrations 0003, 0004) for how deliveries of one key fold together.
select o_interaction_id as id, o_created as created, o_customer_id as customer_id
from upsert_interaction_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                              $20, $21, $22, $23, $24, $25, $26);

-- name: ingest_single_event
-- One delivery holding one event, in a single statement (atomic without an explicit transaction): the raw body
-- ($25-$30: route, content type, headers, stored body, size, key id), then the event ($1-$20, identity $21-$24,
-- redaction counts $31).
with raw as (
    insert into raw_event (
        route, content_type, headers, body, body_size, truncated, status, processed_at, key_id, event_keys
    )
    values ($25, $26, $27, $28, $29, false, 'processed', now(), $30, array[$1 || '/' || $2])
    returning id
)
select raw.id as raw_event_id, u.o_interaction_id as id, u.o_created as created, u.o_customer_id as customer_id
from raw
left join lateral upsert_interaction_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                                           $17, $18, $19, $20, raw.id, $21, $22, $23, $24, $31) as u on true;

-- name: find_interaction_by_key
select id from interaction where source = $1 and external_id = $2;
