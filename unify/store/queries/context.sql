-- name: read_context
-- The whole agent context in one statement (one round trip), assembled as JSON by PostgreSQL in the shape of
-- schemas.Context, and the access-log row written by the same statement.
--
-- $1 identifier kind, $2 its normalized value (null: junk that never links), or $3 a customer id instead;
-- $4 trusted (false: bodies, promise texts and the other identifiers masked); $5 the repeat window in seconds;
-- $6 timeline entries; $7 the API key asking; $8 the verification the desktop vouches for; $9 guidance thresholds
-- as jsonb {failed, complaints[], vip_tiers[], at_risk_repeats, at_risk_wait_seconds}; $10 the lookup kind;
-- $11 the interaction in front of the agent, when the desktop names it.
--
-- Returns `status` (found, ambiguous, unknown, or missing for a customer id that does not exist) and `document`.
-- The definitions used (contact, repeat, journey, customer wait, failed contact) are those of migration 0010; the
-- summaries are computed in one pass over the customer's history (`summary`), the journey's effort in a second.
with found as materialized (
    select d.id, d.verification, d.shared, c.root_id
    from identifier d
    left join customer c on c.id = d.customer_id
    where $3::uuid is null and d.kind = $1::text and d.value = $2::text
),
outcome as materialized (
    select case
               when $3::uuid is not null then case when r.root is null then 'missing' else 'found' end
               when f.shared then 'ambiguous'
               when r.root is not null then 'found'
               else 'unknown'
           end as status,
           r.root,
           f.id as identifier_id,
           f.verification as identifier_verification,
           f.shared,
           make_interval(secs => $5::float8) as win,
           statement_timestamp() as now,
           array(select jsonb_array_elements_text($9::jsonb -> 'complaints')) as complaints,
           array(select jsonb_array_elements_text($9::jsonb -> 'vip_tiers')) as vip_tiers
    from (select case when $3::uuid is not null then (select c.root_id from customer c where c.id = $3::uuid)
                      else (select f0.root_id from found f0 where not f0.shared) end as root) r
    left join found f on true
),
history as materialized (
    select h.*,
           h.occurred_at >= o.now - interval '30 days' as recent_month,
           (lower(h.reason) = any(o.complaints) or lower(h.disposition) = any(o.complaints)) as complaint
    from outcome o
    cross join lateral customer_history(o.root, o.win) h
    where o.root is not null
),
current_contact as materialized (
    -- The contact in front of the agent. When the desktop names an interaction of this customer ($11): the contact it
    -- belongs to (itself, or for a transfer leg, a reply or a later message, the latest contact up to it). Else the
    -- customer's latest contact while its conversation is live: at or after it, a call leg not yet ended (started in
    -- the last 4 hours) or a message of the last 15 minutes. The repeat figures count the contacts before it; with
    -- none, the lookup itself is the new contact (now).
    select l.id, l.occurred_at
    from (select h.id, h.occurred_at
          from history h
          left join history n on n.id = $11::uuid
          where h.is_contact and (n.id is null or (h.occurred_at, h.id) <= (n.occurred_at, n.id))
          order by h.occurred_at desc, h.id desc
          limit 1) l
    where exists (select 1 from history n where n.id = $11::uuid)
       or exists (select 1 from history a
                  where a.direction <> 'internal' and (a.occurred_at, a.id) >= (l.occurred_at, l.id)
                    and ((a.channel = 'voice' and a.ended_at is null
                          and a.status in ('initiated', 'ringing', 'queued', 'in_progress')
                          and a.occurred_at >= statement_timestamp() - interval '4 hours')
                         or (a.channel <> 'voice' and a.occurred_at >= statement_timestamp() - interval '15 minutes')))
),
earlier as materialized (
    -- The customer's contacts within the repeat window before the current contact (or before now), summed up.
    select count(h.id) as recent,
           array_agg(distinct h.channel) filter (where h.id is not null) as recent_channels,
           array_agg(distinct h.reason) filter (where h.reason is not null) as recent_reasons,
           min(h.occurred_at) as recent_since,
           max(h.occurred_at) as recent_last,
           (select c.id from current_contact c) as current_id
    from outcome o
    left join current_contact cur on true
    left join history h
        on h.is_contact and h.id is distinct from cur.id
       and contact_repeats(h.occurred_at, coalesce(cur.occurred_at, o.now), o.win)
),
summary as materialized (
    select max(h.occurred_at) filter (where h.is_contact) as last_contact,
           -- The current journey starts at the last contact that did not repeat the one before it.
           max(h.occurred_at) filter (where h.is_contact and not h.repeat) as journey_start,
           -- what reached nobody from the customer's side (an inbound transfer leg too; a failed call-back or any
           -- leg the platform dialled out is not counted)
           count(*) filter (where h.direction = 'inbound' and is_failed_contact(h.status)
                              and h.occurred_at >= o.now - interval '24 hours') as failed_today,
           string_agg(distinct h.status, ', ') filter (where h.direction = 'inbound' and is_failed_contact(h.status)
                                                         and h.occurred_at >= o.now - interval '24 hours')
               as failed_statuses,
           string_agg(distinct h.channel, ', ') filter (where h.complaint and h.occurred_at >= o.now - o.win)
               as complaint_channels,
           (array_agg(h.tier order by h.occurred_at desc, h.id desc) filter (where h.tier is not null))[1] as tier
    from outcome o
    left join history h on true
    group by o.now, o.win
),
effort as materialized (
    select count(h.id) as interactions,
           count(h.id) filter (where h.is_contact) as contacts,
           min(h.occurred_at) as since,
           coalesce(sum(customer_wait_seconds(h.queue_wait_seconds, h.hold_seconds)), 0) as customer_wait,
           coalesce(sum(h.queue_wait_seconds), 0) as queue_wait,
           coalesce(sum(h.hold_seconds), 0) as hold,
           -- the platforms' transfer counts, or the inbound call legs continuing another (Amazon Connect, native
           -- events that count none; Twilio's dialled child legs are outbound and not counted)
           greatest(coalesce(sum(h.transfer_count), 0),
                    count(*) filter (where h.direction = 'inbound' and h.channel = 'voice' and not h.is_contact))
               as transfers,
           count(distinct h.agent) as agents,
           coalesce(max(customer_wait_seconds(h.queue_wait_seconds, h.hold_seconds)), 0) as longest_leg,
           -- over the legs that recorded a wait (a chat message or an email records none: not a wait of 0 s)
           coalesce(avg(customer_wait_seconds(h.queue_wait_seconds, h.hold_seconds))
                        filter (where h.queue_wait_seconds is not null or h.hold_seconds is not null), 0)
               as average_leg
    from summary s
    cross join outcome o
    left join history h
        on h.direction <> 'internal' and h.occurred_at >= s.journey_start
       -- ongoing only while the customer's last contact is within the window of now
       and contact_repeats(s.last_contact, o.now, o.win)
),
promises as materialized (
    select pr.*, (pr.status = 'open' and pr.due_at < o.now) as overdue
    from outcome o
    join customer c on c.root_id = o.root
    join promise pr on pr.customer_id = c.id
),
logged as (
    insert into context_access (api_key_id, route, customer_id, identifier_kind, identifier_value, match_status,
                                verification, masked)
    select $7::uuid, 'context', o.root, $10::text, $2::text,
           case o.status when 'missing' then 'unknown' else o.status end, $8::text, not $4::boolean
    from outcome o
)
select o.status, json_build_object(
    'generated_at', o.now,
    'match', json_build_object(
        'status', case o.status when 'missing' then 'unknown' else o.status end,
        'kind', $10::text,
        'value', $2::text,
        'identifier_verification', o.identifier_verification,
        'lookup_verification', $8::text,
        'trusted', $4::boolean,
        'candidates', case when o.shared then coalesce((
            select json_agg(json_build_object(
                       'customer_id', r.id, 'display_name', r.display_name,
                       'last_contact_at', (select max(d2.last_seen) from identifier d2 join customer m2
                                           on m2.id = d2.customer_id where m2.root_id = r.id))
                   order by r.id)
            from customer r
            where r.id in (select c2.root_id from identifier_usage u join customer c2 on c2.id = u.customer_id
                           where u.identifier_id = o.identifier_id)), '[]') else '[]' end),
    'customer', (
        select json_build_object(
            'id', r.id,
            'display_name', r.display_name,
            'created_at', r.created_at,
            'merged_customer_ids',
                coalesce((select json_agg(m.id order by m.id) from customer m where m.root_id = r.id and m.id <> r.id),
                         '[]'),
            'identifiers', coalesce((
                select json_agg(json_build_object(
                           'kind', d.kind,
                           'value', case when $4::boolean or d.id = o.identifier_id then d.value
                                         else '•••' || right(d.value, 2) end,
                           'verification', d.verification,
                           'shared', d.shared,
                           'masked', not ($4::boolean or d.id = o.identifier_id))
                       order by d.kind, d.value)
                from customer m join identifier d on d.customer_id = m.id
                where m.root_id = r.id), '[]'))
        from customer r where r.id = o.root),
    'timeline', coalesce((
        select json_agg(timeline_entry(row(t.*)::history_entry, $4::boolean) order by t.occurred_at desc, t.id desc)
        from (select id, source, channel, direction, status, occurred_at, ended_at, agent, queue, thread_key,
                     subject, reason, disposition, queue_wait_seconds, hold_seconds, talk_seconds, transfer_count,
                     snippet, tier, is_contact, repeat
              from history order by occurred_at desc, id desc limit $6::integer) t), '[]'),
    -- The oldest entry shown, when there is more; `~masked` when this answer is masked, so that the pages after it
    -- are masked too.
    'next_cursor', (select (extract(epoch from t.occurred_at) * 1000000)::bigint || '~' || t.id
                    from history t
                    order by t.occurred_at desc, t.id desc offset $6::integer - 1 limit 1)
                   -- only when an entry older than it exists
                   ::text || case when (select count(*) from history) > $6::integer
                                  then case when $4::boolean then '' else '~masked' end end,
    'open_threads', coalesce((
        select json_agg(x.doc order by x.last_at desc) from (
            -- An email or chat thread whose last message (last 30 days) came from the customer.
            select t.occurred_at as last_at, json_build_object(
                'kind', t.channel || '_thread', 'channel', t.channel, 'thread_key', t.thread_key,
                'interaction_id', t.id, 'last_at', t.occurred_at, 'messages', t.messages,
                'subject', case when $4::boolean then t.subject end) as doc
            from (select distinct on (h.thread_key) h.*, count(*) over (partition by h.thread_key) as messages
                  from history h
                  where h.recent_month and h.channel in ('email', 'chat') and h.thread_key is not null
                  order by h.thread_key, h.occurred_at desc, h.id desc) t
            where t.direction = 'inbound'
            union all
            -- A call still owed a call back: a failed inbound call, or one whose disposition asks for one, with no
            -- interaction after it that reached the customer.
            select f.occurred_at, json_build_object(
                'kind', 'call_follow_up', 'channel', f.channel, 'thread_key', f.thread_key,
                'interaction_id', f.id, 'last_at', f.occurred_at, 'messages', 1,
                'subject', case when $4::boolean then f.subject end)
            from history f
            where f.recent_month and f.channel = 'voice'
              and ((f.direction = 'inbound' and is_failed_contact(f.status))
                   or lower(f.disposition) in ('callback', 'call_back', 'call-back', 'follow_up', 'follow-up'))
              and not exists (select 1 from history l
                              where l.occurred_at > f.occurred_at and not is_failed_contact(l.status)
                                and l.direction <> 'internal')) x), '[]'),
    'repeat', json_build_object(
        'is_repeat', r.recent > 0,
        'window_days', $5::float8 / 86400,
        'contacts', r.recent,
        'channels', coalesce(to_json(r.recent_channels), '[]'),
        'since', r.recent_since,
        'reasons', coalesce(to_json(r.recent_reasons), '[]'),
        'last_contact_at', r.recent_last,
        'current_interaction_id', r.current_id),
    'effort', json_build_object(
        'ongoing', e.interactions > 0,
        'since', e.since,
        'interactions', e.interactions,
        'contacts', e.contacts,
        'customer_wait_seconds', e.customer_wait,
        'queue_wait_seconds', e.queue_wait,
        'hold_seconds', e.hold,
        'transfers', e.transfers,
        'agents', e.agents,
        'longest_leg_wait_seconds', e.longest_leg,
        'average_leg_wait_seconds', e.average_leg,
        'perception_gap', case when e.longest_leg > 0 then e.customer_wait / e.longest_leg end),
    'promises', coalesce((
        select json_agg(json_build_object(
                   'id', pr.id, 'customer_id', pr.customer_id,
                   'text', case when $4::boolean then pr.text end,
                   'due_at', pr.due_at, 'channel', pr.channel, 'agent', pr.agent,
                   'interaction_id', pr.interaction_id, 'status', pr.status, 'overdue', pr.overdue,
                   'created_at', pr.created_at, 'resolved_at', pr.resolved_at, 'resolved_by', pr.resolved_by,
                   'note', case when $4::boolean then pr.note end)
               order by pr.overdue desc, pr.status <> 'open', case when pr.status = 'open' then pr.due_at end,
                        pr.resolved_at desc)
        from (select * from promises
              order by overdue desc, status <> 'open', case when status = 'open' then due_at end,
                       resolved_at desc
              limit 50) pr), '[]'),
    'guidance', coalesce((
        select json_agg(json_build_object('flag', g.flag, 'reasons', g.reasons) order by g.position)
        from (values
            (1, 'suppress_offers', array_remove(array[
                case when s.failed_today >= ($9::jsonb ->> 'failed')::integer
                     then format('%s failed contacts in the last 24 h (%s)', s.failed_today, s.failed_statuses) end,
                case when s.complaint_channels is not null
                     then format('complaint on %s within the repeat window', s.complaint_channels) end], null)),
            (2, 'vip', array_remove(array[
                case when s.tier = any(o.vip_tiers)
                     then format('tier %s (latest interaction)', s.tier) end], null)),
            (3, 'at_risk', array_remove(array[
                case when r.recent >= ($9::jsonb ->> 'at_risk_repeats')::integer
                     then format('%s contacts within the repeat window', r.recent) end,
                case when p.late > 0 then format('%s broken or overdue promises', p.late) end,
                case when e.customer_wait >= ($9::jsonb ->> 'at_risk_wait_seconds')::float8
                     then format('waited %s min on this journey', round((e.customer_wait / 60)::numeric)) end],
                null))
        ) as g (position, flag, reasons)
        where o.root is not null and cardinality(g.reasons) > 0), '[]')
)::text as document
from outcome o
cross join summary s
cross join earlier r
cross join effort e
cross join (select count(*) filter (where status = 'broken' or overdue) as late from promises) p;

-- name: read_timeline
-- A page of the timeline of $1's group, older than the cursor ($3, $4) when given; $2 the repeat window in seconds,
-- $5 the page size, $6 the API key (logged), $7 the verification the desktop vouches for, $8 trusted (false: no
-- bodies, and the next cursor says `~masked`, as the context's does). No row: no such customer.
with target as materialized (
    select c.root_id as root from customer c where c.id = $1
),
page as materialized (
    select h.occurred_at, h.id, timeline_entry(h, $8::boolean) as entry
    from target g
    cross join lateral customer_history(g.root, make_interval(secs => $2::float8)) h
    where $3::timestamptz is null or (h.occurred_at, h.id) < ($3::timestamptz, $4::uuid)
    order by h.occurred_at desc, h.id desc
    limit $5::integer + 1
),
logged as (
    insert into context_access (api_key_id, route, customer_id, match_status, verification, masked)
    select $6::uuid, 'timeline', g.root, 'found', $7::text, not $8::boolean from target g
)
select g.root,
       coalesce((select json_agg(x.entry order by x.occurred_at desc, x.id desc)
                 from (select * from page order by occurred_at desc, id desc limit $5::integer) x), '[]')::text
           as entries,
       (select (extract(epoch from t.occurred_at) * 1000000)::bigint || '~' || t.id
               || case when $8::boolean then '' else '~masked' end
        from page t
        where (select count(*) from page) > $5::integer
        order by t.occurred_at desc, t.id desc offset $5::integer - 1 limit 1) as next_cursor
from target g;

-- name: create_promise
-- $1 customer (any id of the group; the promise is recorded against the group's root), $2 text, $3 due, $4 channel,
-- $5 agent, $6 interaction (null, or one that exists). No row: no such customer, or no such interaction.
insert into promise (customer_id, text, due_at, channel, agent, interaction_id)
select c.root_id, $2, $3, $4, $5, $6 from customer c
where c.id = $1 and ($6::uuid is null or exists (select 1 from interaction i where i.id = $6::uuid))
returning *, (status = 'open' and due_at < statement_timestamp()) as overdue;

-- name: update_promise
-- Set the status of promise $2 of $1's group; resolved_at/by are set when it leaves `open` and cleared when it
-- returns. No row: no such promise for this customer.
update promise pr
set status = $3,
    note = coalesce($4, pr.note),
    resolved_at = case when $3 = 'open' then null else statement_timestamp() end,
    resolved_by = case when $3 = 'open' then null else $5 end
from customer c, customer g
where c.id = $1 and g.root_id = c.root_id and pr.customer_id = g.id and pr.id = $2
returning pr.*, (pr.status = 'open' and pr.due_at < statement_timestamp()) as overdue;

-- name: list_promises
-- Every promise of $1's group: overdue first, then open by due time, then resolved, latest first.
select pr.*, (pr.status = 'open' and pr.due_at < statement_timestamp()) as overdue
from customer c
join customer g on g.root_id = c.root_id
join promise pr on pr.customer_id = g.id
where c.id = $1
order by overdue desc, pr.status <> 'open', case when pr.status = 'open' then pr.due_at end, pr.resolved_at desc;

-- name: customer_exists
select exists (select 1 from customer where id = $1);

-- name: list_context_access
-- The whole access log, newest first, from $3, before $4 ($1 customer and $2 key: null; see the next two).
-- Three statements, not one with "$1 is null or …": prepared once for every call, such a statement is planned
-- without knowing which filter is given, and would read the whole log for one customer's reads.
select a.*
from context_access a
where ($3::timestamptz is null or a.read_at >= $3::timestamptz)
  and ($4::timestamptz is null or a.read_at < $4::timestamptz)
  and $1::uuid is null and $2::uuid is null
order by a.read_at desc, a.id desc
limit $5;

-- name: list_context_access_of_key
-- The reads of one API key ($2, not null), newest first, from $3, before $4 (through context_access_key).
select a.*
from context_access a
where a.api_key_id = $2::uuid
  and ($3::timestamptz is null or a.read_at >= $3::timestamptz)
  and ($4::timestamptz is null or a.read_at < $4::timestamptz)
  and $1::uuid is null
order by a.read_at desc, a.id desc
limit $5;

-- name: list_context_access_of_customer
-- The reads of one customer's group ($1, not null: the customers merged with it, and the id itself, which an
-- erasure or an undone merge may have left without a customer row), newest first, optionally of one API key ($2),
-- from $3, before $4 (through context_access_customer).
select a.*
from context_access a
where a.customer_id = any(array(select g.id from customer c join customer g on g.root_id = c.root_id
                                where c.id = $1::uuid
                                union
                                select $1::uuid))
  and ($2::uuid is null or a.api_key_id = $2::uuid)
  and ($3::timestamptz is null or a.read_at >= $3::timestamptz)
  and ($4::timestamptz is null or a.read_at < $4::timestamptz)
order by a.read_at desc, a.id desc
limit $5;
