-- name: insert_raw_event
insert into raw_event (route, content_type, headers, body, body_size, truncated, status, error, processed_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, case when $7 = 'processed' then now() end)
returning id;

-- name: mark_raw_event_processed
update raw_event set status = 'processed', processed_at = now(), error = null where id = $1;

-- name: upsert_interaction
-- A higher revision advances the interaction: its non-default fields override, the earlier ones stay
-- (event JSON omits defaults, so `old || new` keeps what only an earlier delivery knew).
-- An equal or lower revision changes nothing and returns no row.
insert into interaction as i (
    source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
    agent, queue, thread_key, subject, reason, disposition,
    queue_wait_seconds, hold_seconds, talk_seconds, transfer_count, event, raw_event_id
)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)
on conflict (source, external_id) do update set
    channel            = excluded.channel,
    direction          = excluded.direction,
    status             = excluded.status,
    revision           = excluded.revision,
    occurred_at        = excluded.occurred_at,
    answered_at        = coalesce(excluded.answered_at, i.answered_at),
    ended_at           = coalesce(excluded.ended_at, i.ended_at),
    agent              = coalesce(excluded.agent, i.agent),
    queue              = coalesce(excluded.queue, i.queue),
    thread_key         = coalesce(excluded.thread_key, i.thread_key),
    subject            = coalesce(excluded.subject, i.subject),
    reason             = coalesce(excluded.reason, i.reason),
    disposition        = coalesce(excluded.disposition, i.disposition),
    queue_wait_seconds = coalesce(excluded.queue_wait_seconds, i.queue_wait_seconds),
    hold_seconds       = coalesce(excluded.hold_seconds, i.hold_seconds),
    talk_seconds       = coalesce(excluded.talk_seconds, i.talk_seconds),
    transfer_count     = greatest(excluded.transfer_count, i.transfer_count),
    event              = i.event || excluded.event,
    raw_event_id       = excluded.raw_event_id,
    updated_at         = now()
where i.revision < excluded.revision
returning id, (xmax = 0) as created, event;

-- name: find_interaction_by_key
select id from interaction where source = $1 and external_id = $2;

-- name: set_interaction_identified
update interaction set identified = $2 where id = $1 and identified is distinct from $2;
