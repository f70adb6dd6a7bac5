-- name: insert_raw_event
insert into raw_event (route, content_type, headers, body, body_size, truncated, status, error, processed_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, case when $7 = 'processed' then now() end)
returning id;

-- name: mark_raw_event_processed
update raw_event set status = 'processed', processed_at = now(), error = null where id = $1;

-- name: upsert_interaction
-- Deliveries of one key fold into one interaction, in any order:
--  * a higher revision wins field by field where it has a value (fields it leaves out keep earlier values);
--  * an equal or lower revision only fills fields still missing;
--  * occurred_at is the earliest time reported, transfer_count the largest.
-- When nothing would change, no row is returned (a duplicate).
insert into interaction as i (
    source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
    agent, queue, thread_key, subject, reason, disposition,
    queue_wait_seconds, hold_seconds, talk_seconds, transfer_count, event, raw_event_id
)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
on conflict (source, external_id) do update set
    channel            = case when excluded.revision > i.revision then excluded.channel else i.channel end,
    direction          = case when excluded.revision > i.revision then excluded.direction else i.direction end,
    status             = case when excluded.revision > i.revision then excluded.status else i.status end,
    revision           = greatest(i.revision, excluded.revision),
    occurred_at        = least(i.occurred_at, excluded.occurred_at),
    answered_at        = case when excluded.revision > i.revision then coalesce(excluded.answered_at, i.answered_at)
                              else coalesce(i.answered_at, excluded.answered_at) end,
    ended_at           = case when excluded.revision > i.revision then coalesce(excluded.ended_at, i.ended_at)
                              else coalesce(i.ended_at, excluded.ended_at) end,
    agent              = case when excluded.revision > i.revision then coalesce(excluded.agent, i.agent)
                              else coalesce(i.agent, excluded.agent) end,
    queue              = case when excluded.revision > i.revision then coalesce(excluded.queue, i.queue)
                              else coalesce(i.queue, excluded.queue) end,
    thread_key         = case when excluded.revision > i.revision then coalesce(excluded.thread_key, i.thread_key)
                              else coalesce(i.thread_key, excluded.thread_key) end,
    subject            = case when excluded.revision > i.revision then coalesce(excluded.subject, i.subject)
                              else coalesce(i.subject, excluded.subject) end,
    reason             = case when excluded.revision > i.revision then coalesce(excluded.reason, i.reason)
                              else coalesce(i.reason, excluded.reason) end,
    disposition        = case when excluded.revision > i.revision then coalesce(excluded.disposition, i.disposition)
                              else coalesce(i.disposition, excluded.disposition) end,
    queue_wait_seconds = case when excluded.revision > i.revision
                              then coalesce(excluded.queue_wait_seconds, i.queue_wait_seconds)
                              else coalesce(i.queue_wait_seconds, excluded.queue_wait_seconds) end,
    hold_seconds       = case when excluded.revision > i.revision then coalesce(excluded.hold_seconds, i.hold_seconds)
                              else coalesce(i.hold_seconds, excluded.hold_seconds) end,
    talk_seconds       = case when excluded.revision > i.revision then coalesce(excluded.talk_seconds, i.talk_seconds)
                              else coalesce(i.talk_seconds, excluded.talk_seconds) end,
    transfer_count     = greatest(i.transfer_count, excluded.transfer_count),
    event              = (case when excluded.revision > i.revision then i.event || excluded.event
                               else excluded.event || i.event end)
                         || jsonb_build_object(
                               'status', case when excluded.revision > i.revision then excluded.status else i.status end,
                               'revision', greatest(i.revision, excluded.revision),
                               'occurred_at', least(i.occurred_at, excluded.occurred_at),
                               'transfer_count', greatest(i.transfer_count, excluded.transfer_count)),
    raw_event_id       = case when excluded.revision > i.revision then excluded.raw_event_id else i.raw_event_id end,
    updated_at         = now()
where excluded.revision > i.revision
   or excluded.occurred_at < i.occurred_at
   or excluded.transfer_count > i.transfer_count
   or (excluded.event || i.event) <> i.event
returning id, (xmax = 0) as created;

-- name: find_interaction_by_key
select id from interaction where source = $1 and external_id = $2;

-- name: set_interaction_identified
update interaction set identified = $2 where id = $1 and identified is distinct from $2;
