-- name: purge_raw_events
-- Raw bodies older than their retention, in batches ($1: 'processed' or 'unprocessed', $2: days, $3: batch size).
with doomed as (
    select id from raw_event
    where (case when $1 = 'processed' then status = 'processed' else status <> 'processed' end)
      and received_at < now() - make_interval(days => $2)
    limit $3
)
delete from raw_event where id in (select id from doomed);

-- name: purge_interactions
-- Interactions of one channel older than its retention, with their identifier links, in batches.
with doomed as (
    select id from interaction
    where channel = $1 and occurred_at < now() - make_interval(days => $2)
    limit $3
),
unlinked as (
    delete from interaction_identifier where interaction_id in (select id from doomed)
)
delete from interaction where id in (select id from doomed);

-- name: purge_transient
-- Parts of split messages that never completed, and replay tokens past any signature's freshness window.
with fragments as (
    delete from message_fragment where received_at < now() - interval '1 day' returning 1
),
tokens as (
    delete from webhook_replay where seen_at < now() - interval '7 days' returning 1
)
select (select count(*) from fragments) as fragments, (select count(*) from tokens) as tokens;

-- name: raw_events_to_reseal
select id, route, key_id, body from raw_event
where key_id is distinct from $1 and id > $2
order by id
limit $3;

-- name: reseal_raw_event
update raw_event set body = $2, key_id = $3 where id = $1;

-- name: count_raw_events_to_reseal
select count(*) from raw_event where key_id is distinct from $1;
