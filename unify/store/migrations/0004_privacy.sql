-- Privacy: redaction counts on interactions, raw bodies encrypted under a key id, and an index for retention.

-- How many card numbers (and CVVs, expiry dates, IBANs, …) were masked in the interaction's text before it was
-- stored, by kind: {"card": 1, "cvv": 1}. Empty when nothing was found.
alter table interaction add column redactions jsonb not null default '{}';

-- raw_event.body holds nonce || AES-GCM ciphertext under the key named here; null: stored in the clear.
alter table raw_event add column key_id text;

-- Retention purges raw events by age.
create index raw_event_received on raw_event (received_at);

-- The upsert now also stores the redaction counts (one more parameter).
drop function upsert_interaction_event(
    text, text, text, text, text, bigint, timestamptz, timestamptz, timestamptz, text, text, text, text, text, text,
    double precision, double precision, double precision, integer, jsonb, bigint, text[], text[], text[], text
);

create function upsert_interaction_event(
    p_source             text,
    p_external_id        text,
    p_channel            text,
    p_direction          text,
    p_status             text,
    p_revision           bigint,
    p_occurred_at        timestamptz,
    p_answered_at        timestamptz,
    p_ended_at           timestamptz,
    p_agent              text,
    p_queue              text,
    p_thread_key         text,
    p_subject            text,
    p_reason             text,
    p_disposition        text,
    p_queue_wait_seconds double precision,
    p_hold_seconds       double precision,
    p_talk_seconds       double precision,
    p_transfer_count     integer,
    p_event              jsonb,
    p_raw_event_id       bigint,
    p_kinds              text[],
    p_values             text[],
    p_levels             text[],
    p_display_name       text,
    p_redactions         jsonb
) returns table (o_interaction_id uuid, o_created boolean, o_customer_id uuid)
language plpgsql
as $$
begin
    return query
    with upserted as (
        insert into interaction as i (
            source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
            agent, queue, thread_key, subject, reason, disposition,
            queue_wait_seconds, hold_seconds, talk_seconds, transfer_count, event, raw_event_id, identified,
            redactions
        )
        values (p_source, p_external_id, p_channel, p_direction, p_status, p_revision, p_occurred_at,
                p_answered_at, p_ended_at, p_agent, p_queue, p_thread_key, p_subject, p_reason, p_disposition,
                p_queue_wait_seconds, p_hold_seconds, p_talk_seconds, p_transfer_count, p_event, p_raw_event_id,
                cardinality(p_kinds) > 0, p_redactions)
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
            identified         = i.identified or excluded.identified,
            redactions         = case when excluded.revision > i.revision then excluded.redactions
                                      else i.redactions end,
            updated_at         = now()
        where excluded.revision > i.revision
           or excluded.occurred_at < i.occurred_at
           or excluded.transfer_count > i.transfer_count
           or (excluded.event || i.event) <> i.event
        returning i.id, (i.xmax = 0) as created, i.occurred_at
    )
    select u.id, u.created,
           link_interaction_identifiers(u.id, p_kinds, p_values, p_levels, u.occurred_at, p_display_name)
    from upserted u;
end;
$$;
