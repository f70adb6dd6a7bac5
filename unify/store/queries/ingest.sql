-- name: insert_raw_event
-- $4 is the body as stored: encrypted under key $9 (null: in the clear); $10 the keys of the events it carried.
insert into raw_event (
    route, content_type, headers, body, body_size, truncated, status, error, processed_at, key_id, event_keys
)
values ($1, $2, $3, $4, $5, $6, $7, $8, case when $7 = 'processed' then now() end, $9, $10)
returning id;

-- name: upsert_interaction
-- Store one event ($1-$20, raw event $21, redaction counts $26; see upsert_interaction_event for how deliveries of
-- one key fold together), then link its identifiers ($22-$25) under the identity policy $27 (migration 0007).
select u.o_interaction_id as id, u.o_created as created,
       link_interaction_identifiers(u.o_interaction_id, $22, $23, $24, u.o_occurred_at, $25, $27) as customer_id
from upsert_interaction_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                              $20, $21, cardinality($22::text[]) > 0, $26) as u;

-- name: ingest_single_event
-- One delivery holding one event, in a single statement (atomic without an explicit transaction): the raw body
-- ($25-$30: route, content type, headers, stored body, size, key id), then the event ($1-$20, identity $21-$24,
-- redaction counts $31, identity policy $32).
with raw as (
    insert into raw_event (
        route, content_type, headers, body, body_size, truncated, status, processed_at, key_id, event_keys
    )
    values ($25, $26, $27, $28, $29, false, 'processed', now(), $30, array[$1 || '/' || $2])
    returning id
)
select raw.id as raw_event_id, u.o_interaction_id as id, u.o_created as created,
       case when u.o_interaction_id is not null
            then link_interaction_identifiers(u.o_interaction_id, $21, $22, $23, u.o_occurred_at, $24, $32)
       end as customer_id
from raw
left join lateral upsert_interaction_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                                           $17, $18, $19, $20, raw.id, cardinality($21::text[]) > 0, $31) as u on true;

-- name: find_interaction_by_key
select id from interaction where source = $1 and external_id = $2;

-- name: ingest_single_event_batch
-- Several one-event deliveries in one statement, in order (unify.ingest.GroupCommit; migration 0013): per delivery
-- its raw row, interaction and customer, as ingest_single_event; `created` is null for a duplicate.
select o_raw_event_id as raw_event_id, o_interaction_id as id, o_created as created, o_customer_id as customer_id
from ingest_single_event_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                               $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33);
