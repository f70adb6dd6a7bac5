-- The cross-channel consistency audit (unify.audit). Everything is aggregated here; Python only shapes the rows.
--
-- A report is a run (migration 0018): a schema of its own, `audit_run_<id>`, whose unlogged tables every connection
-- of the report can read, first on each connection's search_path (`run_session`). `prepare_range` reads the
-- interactions of the range widened by the repeat window on both sides with their owners; `prepare_legs` orders
-- each customer's of them and notes, for each, its customer's contacts before and after it and its journey, in
-- parts (customers split by their id) that several connections fill at once; `prepare_journeys` folds the legs into
-- journeys; then each `figures_*` query aggregates them, several at a time. The definitions are those of migration
-- 0010 (is_customer_contact, continues_conversation, contact_repeats, customer_wait_seconds, is_failed_contact) and
-- the owner of migration 0014 (each interaction's owning identifier → its customer's root), so a repeat or a
-- customer's wait means what it means on an agent's screen. Journeys are followed up to `to` + the repeat window.
--
-- Filters, in every `figures_*` query: $1 channel, $2 reason, $3 queue (null: any). They select interactions by
-- their own channel/reason/queue, and journeys by those of their first contact.

-- name: sweep_runs
-- Runs left behind by a process that stopped mid-report (migration 0018).
select audit_runs_sweep();

-- name: open_run
select audit_run_open($1);

-- name: close_run
select audit_run_close($1);

-- name: run_session
-- At the start of each transaction of a run ($1 its schema): the run's tables first on the search path, and sorts
-- and hashes of a report in memory. $2: parallel workers per step, '0' for none. Reading the range's interactions
-- with their owners is worth them (the default cost of passing a row from a worker is set for wider rows than the
-- ones passed here); the other steps run side by side on the report's connections, and workers of their own would
-- only crowd the cores. An aggregate that orders its values (`array_agg(v order by v)`) sorts each group's values
-- alone: sorting the whole input by group and value first (enable_presorted_aggregate) is twice as slow here.
select set_config('search_path', quote_ident($1) || ', ' || current_setting('search_path'), true),
       set_config('jit', 'off', true),
       set_config('work_mem', '256MB', true),
       set_config('parallel_tuple_cost', '0.01', true),
       set_config('enable_presorted_aggregate', 'off', true),
       set_config('max_parallel_workers_per_gather', $2, true);

-- name: prepare_range
-- Every non-internal interaction from $1 - $3 to $2 + $3 ($1 from, $2 to, $3 the repeat window): before `from` so
-- that a contact on the first day can repeat one from the day before, after `to` so that a contact on the last day
-- can be seen to be repeated. `in_range`: inside [from, to). `who`: its customer (the root of its owner's), or
-- itself when it has no owner (unidentified: no repeat, no journey).
-- A contact (migration 0010): is_customer_contact, and not continues_conversation of its thread's previous
-- interaction; `followed` when it has a customer.
-- Handle time: talk + hold when the talk time is recorded, else answered → ended.
-- First answer (a contact's wait for one): the queue wait its record shows; else, when it records when it was
-- answered, the time until then; else, in a thread, the time until the thread's first reply after it: an outbound
-- interaction a person sent (not an automatic reply, `details.auto_submitted`, nor a bot's chat message,
-- `details.author_type` 'bot') that did not fail (is_failed_contact); else not known (null).
create unlogged table audit_range with (autovacuum_enabled = off) as
with threaded as (
    -- The previous interaction of each threaded interaction's thread (any direction), for continues_conversation:
    -- the next message of a conversation under way is not a new contact; and the first reply after it.
    select t.id,
           lag(t.occurred_at) over (partition by t.thread_key order by t.occurred_at, t.id) as thread_previous_at,
           min(t.occurred_at) filter (where t.direction = 'outbound' and not is_failed_contact(t.status)
                                            and t.event -> 'details' ->> 'auto_submitted' is distinct from 'true'
                                            and t.event -> 'details' ->> 'author_type' is distinct from 'bot')
               over (partition by t.thread_key order by t.occurred_at desc, t.id desc
                     rows between unbounded preceding and 1 preceding) as thread_reply_at
    from interaction t
    where t.thread_key is not null
      and t.occurred_at >= $1::timestamptz - $3::interval
      and t.occurred_at < $2::timestamptz + $3::interval
),
owned as (
    -- computed by parallel workers when the planner uses them: the event is read here and not carried further
    select i.id,
           i.source,
           i.external_id,
           i.channel,
           i.direction = 'inbound' as inbound,
           i.occurred_at,
           coalesce(i.ended_at, i.answered_at, i.occurred_at) as finished_at,
           i.reason,
           i.queue,
           i.queue_wait_seconds as queue_wait,
           i.answered_at,
           i.hold_seconds as hold,
           case when i.queue_wait_seconds is not null or i.hold_seconds is not null
                then customer_wait_seconds(i.queue_wait_seconds, i.hold_seconds) end as customer_wait,
           case when i.talk_seconds is not null then i.talk_seconds + coalesce(i.hold_seconds, 0)
                when i.answered_at is not null and i.ended_at >= i.answered_at
                then extract(epoch from i.ended_at - i.answered_at)::double precision end as handle,
           i.transfer_count,
           i.identified,
           is_customer_contact(i.direction, i.event) as customer_contact,
           is_failed_contact(i.status) as failed,
           coalesce(i.event -> 'details' ->> 'previous_contact_id', i.event -> 'details' ->> 'parent_call_id')
               as continues,
           o.root_id as customer_id
    from interaction i
    left join identifier od on od.id = i.owner_identifier_id
    left join customer o on o.id = od.customer_id
    where i.occurred_at >= $1::timestamptz - $3::interval
      and i.occurred_at < $2::timestamptz + $3::interval
      and i.direction <> 'internal'
    offset 0  -- planned apart, so that these columns are what the workers pass on (not the whole event)
)
select w.id, w.source, w.external_id, w.channel, w.inbound, w.occurred_at, w.finished_at, w.reason, w.queue,
       w.queue_wait,
       case when w.customer_contact
            then coalesce(w.queue_wait,
                          case when w.answered_at >= w.occurred_at
                               then extract(epoch from w.answered_at - w.occurred_at)::double precision end,
                          extract(epoch from t.thread_reply_at - w.occurred_at)::double precision) end
           as first_answer,
       w.hold, w.customer_wait, w.handle, w.transfer_count, w.identified,
       w.customer_contact and not continues_conversation(t.thread_previous_at, w.occurred_at)
           and w.customer_id is not null as followed,
       w.customer_contact and not continues_conversation(t.thread_previous_at, w.occurred_at) as contact,
       w.failed, w.continues, w.customer_id,
       coalesce(w.customer_id, w.id) as who,
       w.occurred_at >= $1::timestamptz and w.occurred_at < $2::timestamptz as in_range
from owned w
left join threaded t on t.id = w.id;

-- name: create_tables
-- The range's interactions, each with its customer's contacts before and after it (prepare_legs fills it), and
-- the journeys (prepare_journeys). Made empty beforehand, so that the statements that read them can be prepared
-- before they are filled.
create unlogged table audit_leg (
    id               uuid,
    source           text,
    external_id      text,
    channel          text,
    inbound          boolean,
    occurred_at      timestamptz,
    finished_at      timestamptz,
    reason           text,
    queue            text,
    queue_wait       double precision,
    first_answer     double precision,
    hold             double precision,
    customer_wait    double precision,
    handle           double precision,
    transfer_count   integer,
    identified       boolean,
    contact          boolean,
    failed           boolean,
    continues        text,
    customer_id      uuid,
    in_range         boolean,
    followed         boolean,
    previous_channel text,
    repeat           boolean,
    starts           boolean,
    resolved         boolean,
    settled          boolean,
    journey_no       bigint
) with (autovacuum_enabled = off);
create unlogged table audit_journey (
    customer_id   uuid,
    journey_no    bigint,
    started_at    timestamptz,
    in_range      boolean,
    channel       text,
    reason        text,
    queue         text,
    finished_at   timestamptz,
    queue_wait    double precision,
    hold          double precision,
    customer_wait double precision,
    legs          bigint,
    resolved      boolean
) with (autovacuum_enabled = off);

-- name: prepare_legs
-- Part $4 of $3 (the customers whose id's last byte is $4 modulo $3) of audit_range, in one sort of each
-- customer's interactions ($1 the repeat window):
-- * `previous_at` / `previous_channel` / `next_at`: the customer's contacts before and after it (any channel),
--   taken from the customer's contacts in order (gathered once per customer) by how many of them come up to it;
-- * `repeat` (contact_repeats of the previous contact); `resolved`: no repeat of it followed within the window;
--   `settled`: that window has passed by $2 (least(to + window, now)), so whether it was resolved is known;
-- * `journey_no`: the customer's journey it falls in (a contact that is not a repeat starts the next one).
insert into audit_leg
with neighbours as (
    select s.*,
           (array_agg(s.occurred_at) filter (where s.followed) over whole)
               [count(*) filter (where s.followed) over upto - s.followed::integer] as previous_at,
           (array_agg(s.channel) filter (where s.followed) over whole)
               [count(*) filter (where s.followed) over upto - s.followed::integer] as previous_channel,
           (array_agg(s.occurred_at) filter (where s.followed) over whole)
               [count(*) filter (where s.followed) over upto + 1] as next_at
    from audit_range s
    where get_byte(uuid_send(s.who), 15) % $3::integer = $4::integer
    window w as (partition by s.who order by s.occurred_at, s.contact desc, s.id),
           upto as (w rows between unbounded preceding and current row),
           whole as (w rows between unbounded preceding and unbounded following)
),
marked as (
    select n.*,
           n.followed and contact_repeats(n.previous_at, n.occurred_at, $1::interval) as repeat
    from neighbours n
)
select m.id, m.source, m.external_id, m.channel, m.inbound, m.occurred_at, m.finished_at, m.reason,
       m.queue, m.queue_wait, m.first_answer, m.hold, m.customer_wait, m.handle, m.transfer_count, m.identified,
       m.contact, m.failed,
       m.continues, m.customer_id, m.in_range, m.followed,
       m.previous_channel,
       m.repeat,
       m.followed and not m.repeat as starts,
       m.followed and (m.next_at is null or not contact_repeats(m.occurred_at, m.next_at, $1::interval)) as resolved,
       m.followed and m.occurred_at + $1::interval <= $2::timestamptz as settled,
       sum((m.followed and not m.repeat)::integer)
           over (partition by m.who order by m.occurred_at, m.contact desc, m.id rows unbounded preceding)
           as journey_no
from marked m;

-- name: prepare_journeys
-- Journeys (migration 0010): a contact that does not repeat the one before starts one; every identified
-- interaction belongs to the journey its time falls in. Per journey: its first contact (channel, reason, queue,
-- time), the sums of queue wait, hold and customer wait over every leg (what the customer lived through: the sums
-- of the agent context's effort), the end of its last interaction, and whether it is resolved: its last contact's
-- window has passed ($2, as above) with no repeat. $1 the repeat window. A sum none of whose legs recorded the value
-- is null (not 0 s): that journey's wait is not known, and the figures leave it out as they leave out a leg with no
-- record.
insert into audit_journey
select customer_id,
       journey_no,
       min(occurred_at) filter (where starts) as started_at,
       bool_or(in_range) filter (where starts) as in_range,
       min(channel) filter (where starts) as channel,
       min(reason) filter (where starts) as reason,
       min(queue) filter (where starts) as queue,
       max(finished_at) as finished_at,
       sum(queue_wait) as queue_wait,
       sum(hold) as hold,
       sum(customer_wait) as customer_wait,
       count(*) as legs,
       max(occurred_at) filter (where followed) + $1::interval <= $2::timestamptz as resolved
from audit_leg
where customer_id is not null and journey_no > 0
group by customer_id, journey_no;

-- name: range_reasons
-- The reasons of the range's contacts (as figures_reasons lists them): the cells of figures_wait_tests.
select coalesce(reason, '') as reason
from audit_leg
where in_range and contact
  and ($1::text is null or channel = $1) and ($2::text is null or reason = $2) and ($3::text is null or queue = $3)
group by 1
order by 1;

-- name: figures_channels
-- Per channel and overall (`overall`): contacts and their customers, per-leg waits as each leg's record shows
-- them (inbound legs: contacts and the legs continuing them), contacts' first answers (prepare_range), handle time, transfers, failures, repeats and first
-- contact resolution. Percentiles are discrete (an observed value): [median, p90].
with continued as (
    select distinct source, continues from audit_leg where continues is not null
),
rows as (
    select l.*, l.contact and (l.transfer_count > 0 or t.continues is not null) as transferred
    from audit_leg l
    left join continued t on t.source = l.source and t.continues = l.external_id
    where l.in_range and l.inbound
      and ($1::text is null or l.channel = $1) and ($2::text is null or l.reason = $2)
      and ($3::text is null or l.queue = $3)
)
select grouping(channel) = 1 as overall,
       channel,
       count(*) filter (where contact) as contacts,
       count(distinct customer_id) filter (where contact) as customers,
       count(*) filter (where contact and not identified) as unidentified,
       count(*) filter (where contact and customer_id is not null) as identified_contacts,
       count(*) as legs,
       count(queue_wait) as queue_wait_n,
       percentile_disc(array[0.5, 0.9]) within group (order by queue_wait) as queue_wait,
       count(hold) as hold_n,
       percentile_disc(array[0.5, 0.9]) within group (order by hold) as hold,
       count(customer_wait) as customer_wait_n,
       percentile_disc(array[0.5, 0.9]) within group (order by customer_wait) as customer_wait,
       count(handle) as handle_n,
       percentile_disc(array[0.5, 0.9]) within group (order by handle) as handle,
       count(first_answer) filter (where contact) as first_answer_n,
       percentile_disc(array[0.5, 0.9]) within group (order by first_answer) filter (where contact) as first_answer,
       count(*) filter (where transferred) as transferred,
       count(*) filter (where contact and failed) as failed,
       count(*) filter (where repeat) as repeats,
       count(*) filter (where settled) as fcr_settled,
       count(*) filter (where settled and resolved) as fcr_resolved
from rows
group by grouping sets ((channel), ())
order by overall, channel;

-- name: figures_journeys
-- Journeys that started in the range, by the channel of their first contact, and overall: what the customer
-- waited summed over every leg and contact of the journey (`_n`: the journeys with such a record). [median, p90].
select grouping(channel) = 1 as overall,
       channel,
       count(*) as journeys,
       count(queue_wait) as queue_wait_n,
       count(hold) as hold_n,
       count(customer_wait) as customer_wait_n,
       percentile_disc(array[0.5, 0.9]) within group (order by queue_wait) as queue_wait,
       percentile_disc(array[0.5, 0.9]) within group (order by hold) as hold,
       percentile_disc(array[0.5, 0.9]) within group (order by customer_wait) as customer_wait
from audit_journey
where in_range
  and ($1::text is null or channel = $1) and ($2::text is null or reason = $2) and ($3::text is null or queue = $3)
group by grouping sets ((channel), ())
order by overall, channel;

-- name: figures_switches
-- Repeat contacts in the range by the channel of the contact they repeat and their own.
select previous_channel as from_channel, channel as to_channel, count(*) as repeats
from audit_leg
where in_range and repeat
  and ($1::text is null or channel = $1) and ($2::text is null or reason = $2) and ($3::text is null or queue = $3)
group by previous_channel, channel
order by previous_channel, channel;

-- name: figures_reasons
-- Per reason × channel: contacts in the range, journeys that started in it (by their first contact), those
-- resolved, and the median time to resolution (first contact → end of the journey's last interaction, seconds).
with contacts as (
    select coalesce(reason, '') as reason, channel, count(*) as contacts
    from audit_leg
    where in_range and contact
      and ($1::text is null or channel = $1) and ($2::text is null or reason = $2)
      and ($3::text is null or queue = $3)
    group by 1, 2
),
journeys as (
    select coalesce(reason, '') as reason, channel, count(*) as journeys,
           count(*) filter (where resolved) as resolved,
           percentile_disc(0.5) within group (order by extract(epoch from finished_at - started_at)::double precision)
               filter (where resolved) as median_resolution_seconds
    from audit_journey
    where in_range
      and ($1::text is null or channel = $1) and ($2::text is null or reason = $2)
      and ($3::text is null or queue = $3)
    group by 1, 2
)
select c.reason, c.channel, c.contacts, coalesce(j.journeys, 0) as journeys, coalesce(j.resolved, 0) as resolved,
       j.median_resolution_seconds
from contacts c
left join journeys j on j.reason = c.reason and j.channel = c.channel
order by c.reason, c.channel;

-- name: figures_rate_counts
-- The counts behind the rates, per reason × channel and per channel (reason null, `all_reasons`), for the
-- two-proportion tests of the deviations.
with continued as (
    select distinct source, continues from audit_leg where continues is not null
)
select grouping(coalesce(l.reason, '')) = 1 as all_reasons,
       coalesce(l.reason, '') as reason,
       l.channel,
       count(*) as contacts,
       count(*) filter (where l.customer_id is not null) as identified_contacts,
       count(*) filter (where l.repeat) as repeats,
       count(*) filter (where l.settled) as fcr_settled,
       count(*) filter (where l.settled and l.resolved) as fcr_resolved,
       count(*) filter (where l.transfer_count > 0 or t.continues is not null) as transferred,
       count(*) filter (where l.failed) as failed
from audit_leg l
left join continued t on t.source = l.source and t.continues = l.external_id
where l.in_range and l.contact
  and ($1::text is null or l.channel = $1) and ($2::text is null or l.reason = $2)
  and ($3::text is null or l.queue = $3)
group by grouping sets ((l.channel), (coalesce(l.reason, ''), l.channel))
order by all_reasons desc, reason, l.channel;

-- name: figures_wait_tests
-- Mood's median test for waits: per metric and cell (`*` = every reason, else one reason), the pooled median m
-- (discrete: the first value with half the values at or below it, which is percentile_disc(0.5)), and per channel
-- its median, the median of the other channels, and how many of its values and of the others' are at or below m.
-- $4: the reasons of the range's contacts (range_reasons); a cell is its position in $4 (0 for `*`; reasons
-- not listed count in `*` only). Each channel's values of a cell are put in order once, in an array (a sort of each
-- group's values alone: run_session turns off sorting the whole input by group and value first, which is slower);
-- audit_wait_test (migration 0019) takes every median and count of the cell from its four arrays.
-- Metrics ($5: 1 or 2, one per call, so that the first runs beside prepare_journeys): 1 `first_answer_wait` (each
-- contact's own first answer, as prepare_range defines it), 2 `journey_wait` (customer wait summed over the
-- journey, by the journey's first contact).
with vals as materialized (
    select 1 as metric, coalesce(array_position($4::text[], coalesce(reason, '')), 999) as k, channel,
           first_answer as v
    from audit_leg
    where $5::integer = 1 and in_range and contact and first_answer is not null
      and ($1::text is null or channel = $1) and ($2::text is null or reason = $2)
      and ($3::text is null or queue = $3)
    union all
    select 2, coalesce(array_position($4::text[], coalesce(reason, '')), 999), channel, customer_wait
    from audit_journey
    where $5::integer = 2 and in_range and customer_wait is not null
      and ($1::text is null or channel = $1) and ($2::text is null or reason = $2)
      and ($3::text is null or queue = $3)
),
ordered as (
    -- per metric, cell and channel: how many values (n) and the values in order (vals holds no nulls)
    select metric, k, channel, count(*) as n, array_agg(v order by v) filter (where v is not null) as vs
    from vals
    group by metric, k, channel
    union all
    select metric, 0, channel, count(*), array_agg(v order by v) filter (where v is not null)
    from vals
    group by metric, channel
),
cells as (
    select metric,
           k,
           sum(n)::bigint as n,
           array[coalesce(sum(n) filter (where channel = 'voice'), 0),
                 coalesce(sum(n) filter (where channel = 'sms'), 0),
                 coalesce(sum(n) filter (where channel = 'email'), 0),
                 coalesce(sum(n) filter (where channel = 'chat'), 0)]::bigint[] as n_channel,
           row(min(vs) filter (where channel = 'voice'), min(vs) filter (where channel = 'sms'),
               min(vs) filter (where channel = 'email'), min(vs) filter (where channel = 'chat'))::audit_channel_values
               as vs
    from ordered
    group by metric, k
)
select case c.metric when 1 then 'first_answer_wait' else 'journey_wait' end as metric,
       case c.k when 0 then '*' else coalesce(($4::text[])[c.k], '(unlisted)') end as cell,
       c.n,
       t.o_pooled_median as pooled_median,
       t.o_le_pooled as le_pooled,
       c.n_channel,
       t.o_median_channel as median_channel,
       t.o_median_others as median_others,
       t.o_le_channel as le_channel
from cells c
cross join lateral audit_wait_test(c.vs) t
where c.k <> 999
order by c.metric, c.k;

-- name: figures_wait_histogram
-- How long customers waited, in buckets (seconds: <30, 30–60, 60–120, 120–300, 300–600, 600–1800, 1800–3600,
-- ≥3600; bucket 0 is the first): each contact's first-answer wait and each journey's summed wait, per channel.
select 'first_answer_wait' as metric, channel,
       width_bucket(first_answer, array[30, 60, 120, 300, 600, 1800, 3600]::double precision[]) as bucket,
       count(*) as count
from audit_leg
where in_range and contact and first_answer is not null
  and ($1::text is null or channel = $1) and ($2::text is null or reason = $2) and ($3::text is null or queue = $3)
group by channel, bucket
union all
select 'journey_wait', channel,
       width_bucket(customer_wait, array[30, 60, 120, 300, 600, 1800, 3600]::double precision[]), count(*)
from audit_journey
where in_range and customer_wait is not null
  and ($1::text is null or channel = $1) and ($2::text is null or reason = $2) and ($3::text is null or queue = $3)
group by channel, 3
order by 1, 2, 3;

-- name: figures_promises
-- Promises made in the range ($4 from, $5 to), by the channel they were made on and overall, and what became of
-- them by $6 (now): kept, broken, open past their due time (overdue) or still open. Reason and queue filters go
-- through the interaction the promise was made in.
select grouping(p.channel) = 1 as overall,
       p.channel,
       count(*) as made,
       count(*) filter (where p.status = 'kept') as kept,
       count(*) filter (where p.status = 'broken') as broken,
       count(*) filter (where p.status = 'open' and p.due_at < $6::timestamptz) as overdue,
       count(*) filter (where p.status = 'open' and p.due_at >= $6::timestamptz) as open
from promise p
left join interaction i on i.id = p.interaction_id
where p.created_at >= $4::timestamptz and p.created_at < $5::timestamptz
  and ($1::text is null or p.channel = $1) and ($2::text is null or i.reason = $2)
  and ($3::text is null or i.queue = $3)
group by grouping sets ((p.channel), ())
order by overall, p.channel nulls last;

-- name: identity_health
-- The state of identity now: suggestions waiting for a person, suggestions a per-kind limit vetoed (status
-- `conflict`), and identifiers marked shared (they link nobody).
select (select count(*) from merge_suggestion where status = 'pending') as pending_suggestions,
       (select count(*) from merge_suggestion where status = 'conflict') as conflicts,
       (select count(*) from identifier where shared) as shared_identifiers;
