-- Agent context: what a contact means for the customer's journey, promises made to customers, and who read whose
-- context.
--
-- The definitions below are the only ones: the context endpoint (queries/context.sql) and the consistency audit
-- both call them, so "a repeat" or "the customer's wait" means the same thing on an agent's screen and in a report.
--
-- * A contact is an inbound interaction the customer started: not an outbound call or message, not an internal
--   one, not the continuation leg of a transferred call (a leg that names the contact it came from), and not the
--   next message of a conversation under way (within 30 minutes of the previous interaction of its thread: a chat
--   of twenty messages, a burst of texts, is one contact).
-- * A contact is a repeat when the same customer made an earlier contact, on any channel, no longer ago than the
--   repeat window (UNIFY_REPEAT_WINDOW_DAYS).
-- * A journey is a run of the customer's contacts each of which repeats the one before it; the first contact that
--   is not a repeat starts a new journey. Every non-internal interaction (transfer legs and callbacks too) belongs
--   to the journey its time falls in.
-- * The customer's wait on an interaction is its queue wait plus its hold time; across a journey the customer
--   experienced the sum of every leg's, while each agent's record shows one leg's (the perception gap).
-- * A failed contact is one that did not reach anyone: abandoned, unanswered, busy, failed, canceled, or a message
--   that was not delivered or bounced.

create function is_customer_contact(p_direction text, p_event jsonb) returns boolean
language sql immutable parallel safe
return p_direction = 'inbound'
   and p_event -> 'details' ->> 'previous_contact_id' is null
   and p_event -> 'details' ->> 'parent_call_id' is null;

create function continues_conversation(p_thread_previous_at timestamptz, p_at timestamptz) returns boolean
language sql immutable parallel safe
return p_thread_previous_at is not null and p_at - p_thread_previous_at <= interval '30 minutes';

create function contact_repeats(p_previous_at timestamptz, p_at timestamptz, p_window interval) returns boolean
language sql immutable parallel safe
return p_previous_at is not null and p_previous_at <= p_at and p_at - p_previous_at <= p_window;

create function customer_wait_seconds(p_queue_wait double precision, p_hold double precision)
returns double precision
language sql immutable parallel safe
return coalesce(p_queue_wait, 0) + coalesce(p_hold, 0);

create function is_failed_contact(p_status text) returns boolean
language sql immutable parallel safe
return p_status in ('abandoned', 'no_answer', 'busy', 'failed', 'canceled', 'undelivered', 'bounced');

-- Who each interaction belongs to, for every interaction at once (the consistency audit joins it): the root of the
-- customer owning its strongest non-shared identifier, earliest link first. interaction_customer (migration 0007)
-- is redefined on it, so that one interaction and a million are attributed by the same rule.
create view interaction_owner as
select distinct on (ii.interaction_id) ii.interaction_id, c.root_id as customer_id
from interaction_identifier ii
join identifier d on d.id = ii.identifier_id
join customer c on c.id = d.customer_id
where not d.shared
order by ii.interaction_id, verification_rank(ii.verification) desc, d.linked_at, d.id;

create or replace function interaction_customer(p_interaction uuid) returns uuid
language sql stable parallel safe
return (select o.customer_id from interaction_owner o where o.interaction_id = p_interaction);

-- Every interaction of the customer group whose root is p_root: found through the group's identifiers (indexed),
-- kept only when interaction_owner attributes it to this group (what interaction_customer says, written as a
-- subquery the planner inlines), so that an interaction that also carries another customer's stronger identifier
-- shows in that customer's history, not in both.
create function customer_interactions(p_root uuid) returns setof interaction
language sql stable
as $$
    select i.*
    from interaction i
    where i.id in (select ii.interaction_id
                   from customer c
                   join identifier d on d.customer_id = c.id
                   join interaction_identifier ii on ii.identifier_id = d.id
                   where c.root_id = p_root and not d.shared)
      and (select o.customer_id from interaction_owner o where o.interaction_id = i.id) = p_root
$$;

-- A commitment made to a customer ("we will call you back by Friday"), recorded against the customer it was made
-- to; read through that customer's group.
create table promise (
    id              uuid        primary key default uuidv7(),
    customer_id     uuid        not null references customer (id),
    text            text        not null,
    due_at          timestamptz not null,
    channel         text        check (channel in ('voice', 'sms', 'email', 'chat')),
    agent           text,
    interaction_id  uuid,
    status          text        not null default 'open' check (status in ('open', 'kept', 'broken')),
    created_at      timestamptz not null default now(),
    resolved_at     timestamptz,
    resolved_by     text,
    note            text
);
create index promise_customer on promise (customer_id, due_at);
create index promise_open_due on promise (due_at) where status = 'open';
create index promise_created on promise (created_at);

-- Every read of a customer's context or timeline: which key, whom, by what identifier, what was shown.
create table context_access (
    id                bigint      generated always as identity primary key,
    read_at           timestamptz not null default now(),
    api_key_id        uuid,
    route             text        not null check (route in ('context', 'timeline')),
    customer_id       uuid,
    identifier_kind   text,
    identifier_value  text,
    match_status      text        not null check (match_status in ('found', 'ambiguous', 'unknown')),
    verification      text        not null,
    masked            boolean     not null
);
create index context_access_customer on context_access (customer_id, read_at) where customer_id is not null;
create index context_access_read on context_access (read_at);
create index context_access_key on context_access (api_key_id, read_at);

-- The group's interactions with what the journey definitions above say of each: whether it is a contact the
-- customer started, and whether that contact repeats the customer's previous one within p_window. Of the event
-- document only what a timeline shows is kept (the snippet, else the first 200 characters of the text) and the
-- `tier` attribute, so that long bodies are not carried around.
create type history_entry as (
    id uuid, source text, channel text, direction text, status text, occurred_at timestamptz,
    ended_at timestamptz, agent text, queue text, thread_key text, subject text, reason text, disposition text,
    queue_wait_seconds double precision, hold_seconds double precision, talk_seconds double precision,
    transfer_count integer, snippet text, tier text, is_contact boolean, repeat boolean
);

create function customer_history(p_root uuid, p_window interval) returns setof history_entry
language sql stable
as $$
    select h.id, h.source, h.channel, h.direction, h.status, h.occurred_at, h.ended_at, h.agent, h.queue,
           h.thread_key, h.subject, h.reason, h.disposition, h.queue_wait_seconds, h.hold_seconds, h.talk_seconds,
           h.transfer_count, coalesce(h.event ->> 'snippet', left(h.event ->> 'text', 200)),
           lower(h.event -> 'attributes' ->> 'tier'), h.is_contact,
           h.is_contact and contact_repeats(h.previous_at, h.occurred_at, p_window)
    from (
        select c.*, lag(c.occurred_at) over (partition by c.is_contact order by c.occurred_at, c.id) as previous_at
        from (
            select t.*,
                   is_customer_contact(t.direction, t.event)
                   and not continues_conversation(t.thread_previous_at, t.occurred_at) as is_contact
            from (
                select i.*,
                       lag(i.occurred_at) over (partition by coalesce(i.thread_key, i.id::text)
                                                order by i.occurred_at, i.id) as thread_previous_at
                from customer_interactions(p_root) i
            ) t
        ) c
    ) h
$$;

-- One timeline entry (schemas.TimelineEntry), as a row whose JSON (json_agg, to_json) has the entry's fields.
-- Untrusted (p_trusted false): no subject, no text.
create type timeline_row as (
    interaction_id uuid, source text, channel text, direction text, occurred_at timestamptz, status text,
    reason text, disposition text, subject text, snippet text, agent text, queue text,
    queue_wait_seconds double precision, hold_seconds double precision, talk_seconds double precision,
    transfer_count integer, thread_key text, repeat boolean
);

create function timeline_entry(h history_entry, p_trusted boolean) returns timeline_row
language sql immutable
return row(h.id, h.source, h.channel, h.direction, h.occurred_at, h.status, h.reason, h.disposition,
           case when p_trusted then h.subject end, case when p_trusted then h.snippet end, h.agent, h.queue,
           h.queue_wait_seconds, h.hold_seconds, h.talk_seconds, h.transfer_count, h.thread_key, h.repeat
       )::timeline_row;
