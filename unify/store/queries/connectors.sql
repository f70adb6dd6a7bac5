-- name: get_connector_settings
select settings from connector_setting where connector = $1;

-- name: list_connector_settings
select connector, settings, updated_at from connector_setting order by connector;

-- name: upsert_connector_settings
-- Merges: keys given replace earlier values, keys set to null are removed.
insert into connector_setting as c (connector, settings) values ($1, jsonb_strip_nulls($2::jsonb))
on conflict (connector) do update
set settings = jsonb_strip_nulls(c.settings || $2::jsonb), updated_at = now()
returning settings;

-- name: claim_replay_token
insert into webhook_replay (connector, token) values ($1, $2) on conflict do nothing returning token;

-- name: add_fragment
insert into message_fragment (connector, group_key, part_index, part_total, text, event, raw_event_id)
values ($1, $2, $3, $4, $5, $6, $7)
on conflict (connector, group_key, part_index) do nothing;

-- name: lock_fragment_group
select pg_advisory_xact_lock(hashtextextended($1 || '/' || $2, 0));

-- name: reset_fragment_group
-- Platforms reuse their split-message references: a part already stored under this index but from another
-- message (other part id) means a new message began, so the old parts go. Parts older than a day go too.
delete from message_fragment
where connector = $1 and group_key = $2
  and (received_at < now() - interval '1 day'
       or exists (select 1 from message_fragment f
                  where f.connector = $1 and f.group_key = $2 and f.part_index = $3
                    and f.event ->> 'external_id' <> $4));

-- name: get_fragments
select part_index, part_total, text, event from message_fragment
where connector = $1 and group_key = $2
order by part_index;
