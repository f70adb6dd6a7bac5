-- Erasure and export of one customer (unify/privacy/erasure.py).
--
-- A customer is the whole merged group they belong to (every customer whose root_id is theirs): erasing or
-- exporting one customer covers every identifier of every customer merged into it. A customer's interactions are
-- those linked (interaction_identifier) to any identifier the group owns. An interaction that also carries another
-- customer's identifier is one of them too: it holds this customer's data.

-- name: lock_customer_identifiers
-- Erasure, steps 1 and 3: lock the customer's identifiers in the order ingest upserts identifiers ((kind, value)),
-- so that an event carrying one of them waits for the erasure to commit, then finds it gone and starts a new
-- customer. Run again once the customer row is locked, to catch an identifier linked in between (the set is then
-- stable: linking needs the customer row, which the erasure holds).
select d.id, d.kind, d.value
from identifier d
join customer c on c.id = d.customer_id
where c.root_id = (select root_id from customer where id = $1)
order by d.kind, d.value
for update of d;

-- name: lock_customer
-- Erasure, step 2: every customer of the group, in id order. No row: no such customer.
select id, display_name from customer where root_id = (select root_id from customer where id = $1) order by id
for update;

-- name: unprocessed_raw_events
-- Raw deliveries that never became an interaction (rejected, unverified, failed: no event keys), to be opened and
-- searched for an erased customer's identifiers.
select id, route, key_id, body from raw_event where event_keys is null and status <> 'processed' order by id;

-- name: erase_customer
-- Erasure, step 4, in one statement: $1 the customers of the group, $2 the ids of their (locked) identifiers, $3
-- those identifiers' values, $4 the API key asking, $5 the reason, $6 the unprocessed raw deliveries whose body
-- mentions them (found in Python: bodies are encrypted). Writes the audit row and returns it.
--
-- Goes: every interaction linked to one of the identifiers, all identifier links of those interactions, every raw
-- delivery that carried one of those interactions (by its event keys) or a fragment, pending split-message parts that mention one of the
-- values, the identifiers and the customer.
-- Fragments are matched on the text of their event: a value of 6 characters or more (any phone number or email
-- address) anywhere in it; a shorter one only as a whole JSON string, so that a short account number does not
-- match every fragment whose timestamps hold the same digits. Values are compared as they appear inside JSON text.
with doomed as (
    select distinct interaction_id as id from interaction_identifier where identifier_id = any($2::bigint[])
),
interactions as (
    delete from interaction where id in (select id from doomed) returning raw_event_id, source || '/' || external_id as key
),
links as (
    delete from interaction_identifier where interaction_id in (select id from doomed)
),
fragments as (
    delete from message_fragment f
    where exists (
        select 1 from unnest($3::text[]) as v (value)
        where strpos(f.event::text, case when char_length(v.value) >= 6 then btrim(to_jsonb(v.value)::text, '"')
                                         else to_jsonb(v.value)::text end) > 0
    )
    returning raw_event_id
),
raw_events as (
    -- Every delivery that carried one of the interactions (earlier revisions and duplicates too), found by its
    -- event keys (a scan of raw_event: erasure is rare, and the hot path carries no extra index for it).
    delete from raw_event
    where id in (select raw_event_id from interactions union select raw_event_id from fragments)
       or event_keys && (select array_agg(key) from interactions)
       or id = any($6::bigint[])
    returning 1
),
-- A new table that names customers: delete its rows here, before the identifiers and the customer they point to,
-- and add a count to the audit row below (and to ErasureCounts in schemas/_privacy.py).
promises as (
    delete from promise where customer_id = any($1::uuid[]) returning 1
),
context_reads as (
    -- Reads of their context, and lookups by one of their identifier values (found or not).
    delete from context_access
    where customer_id = any($1::uuid[]) or identifier_value = any($3::text[])
    returning 1
),
identifiers as (
    delete from identifier where id = any($2::bigint[]) returning 1
),
customer as (
    -- The foreign key from identifier is checked at the end of the statement, after the identifiers above are gone;
    -- an identifier still linked (which the locking rules out) would fail the whole erasure rather than survive it.
    delete from customer where id = any($1::uuid[])
),
merges as (
    delete from customer_merge where survivor_id = any($1::uuid[]) or merged_id = any($1::uuid[]) returning 1
),
suggestions as (
    delete from merge_suggestion where customer_a = any($1::uuid[]) or customer_b = any($1::uuid[]) returning 1
),
usage as (
    delete from identifier_usage where identifier_id = any($2::bigint[]) or customer_id = any($1::uuid[])
)
insert into erasure_log (actor, reason, counts)
select $4, $5, jsonb_build_object(
    'interactions', (select count(*) from interactions),
    'identifiers', (select count(*) from identifiers),
    'raw_events', (select count(*) from raw_events),
    'fragments', (select count(*) from fragments),
    'merges', (select count(*) from merges),
    'suggestions', (select count(*) from suggestions),
    'promises', (select count(*) from promises),
    'context_reads', (select count(*) from context_reads)
)
returning id, erased_at, counts;

-- name: export_customer
-- Everything held about one customer as one JSON document (the CustomerExport schema), in one statement and so
-- from one consistent snapshot. No row: no such customer.
select jsonb_build_object(
    'exported_at', statement_timestamp(),
    'customer', jsonb_build_object('id', c.id, 'display_name', c.display_name, 'created_at', c.created_at),
    'identifiers', coalesce(
        (select jsonb_agg(
                    jsonb_build_object(
                        'kind', d.kind, 'value', d.value, 'verification', d.verification,
                        'first_seen', d.first_seen, 'last_seen', d.last_seen, 'linked_at', d.linked_at,
                        'link_rule', d.link_rule, 'linked_by_interaction', d.linked_by_interaction)
                    order by d.kind, d.value)
         from identifier d
         where d.customer_id in (select id from customer where root_id = c.id)),
        '[]'),
    'interactions', coalesce(
        (select jsonb_agg(
                    jsonb_build_object('id', i.id, 'received_at', i.received_at, 'updated_at', i.updated_at,
                                       'event', i.event)
                    order by i.occurred_at, i.id)
         from interaction i
         where i.id in (select ii.interaction_id
                        from identifier d
                        join interaction_identifier ii on ii.identifier_id = d.id
                        where d.customer_id in (select id from customer where root_id = c.id))),
        '[]'),
    'merges', coalesce(
        (select jsonb_agg(to_jsonb(m) order by m.merged_at, m.id)
         from customer_merge m
         where m.survivor_id in (select id from customer where root_id = c.id)
            or m.merged_id in (select id from customer where root_id = c.id)),
        '[]'),
    'promises', coalesce(
        (select jsonb_agg(to_jsonb(p) order by p.created_at, p.id)
         from promise p
         where p.customer_id in (select id from customer where root_id = c.id)),
        '[]'),
    'context_reads', coalesce(
        (select jsonb_agg(to_jsonb(a) - 'id' order by a.read_at, a.id)
         from context_access a
         where a.customer_id in (select id from customer where root_id = c.id)),
        '[]')
) as document
from customer c
where c.id = (select root_id from customer where id = $1);
