-- Ingest in one round trip per event: the interaction upsert and the identity linking rule as functions.
--
-- Linking an interaction's identifiers (the rule described in unify/identity/__init__.py).
-- Identifiers are upserted in (kind, value) order, so concurrent events lock rows in one order; the strongest
-- evidence in the event decides which existing customer the interaction belongs to; identifiers nobody owns yet
-- join that customer (rule `same-event`) or a new one (rule `first-contact`). Never merges two customers.

create function link_interaction_identifiers(
    p_interaction  uuid,
    p_kinds        text[],
    p_values       text[],
    p_levels       text[],
    p_seen_at      timestamptz,
    p_display_name text
) returns uuid
language plpgsql
as $$
declare
    v_ids      bigint[];
    v_levels   text[];
    v_owner    uuid;
    v_rule     text := 'same-event';
begin
    with given as (
        select kind, value, level
        from unnest(p_kinds, p_values, p_levels) as g (kind, value, level)
    ),
    upserted as (
        insert into identifier as d (kind, value, verification, first_seen, last_seen)
        select kind, value, level, p_seen_at, p_seen_at from given order by kind, value
        on conflict (kind, value) do update set
            first_seen   = least(d.first_seen, excluded.first_seen),
            last_seen    = greatest(d.last_seen, excluded.last_seen),
            verification = case
                when array_position(array['unverified', 'carrier_attested', 'signed', 'authenticated'],
                                    excluded.verification)
                   > array_position(array['unverified', 'carrier_attested', 'signed', 'authenticated'],
                                    d.verification)
                then excluded.verification else d.verification end
        returning d.id, d.kind, d.value, d.customer_id
    ),
    ranked as (
        select u.id, u.customer_id, g.level,
               array_position(array['unverified', 'carrier_attested', 'signed', 'authenticated'], g.level) as rank
        from upserted u join given g using (kind, value)
    )
    select array_agg(id order by rank desc, id),
           array_agg(level order by rank desc, id),
           (array_agg(customer_id order by rank desc, id) filter (where customer_id is not null))[1]
    into v_ids, v_levels, v_owner
    from ranked;

    if v_ids is null then
        return null;
    end if;
    if v_owner is null then
        insert into customer (display_name) values (p_display_name) returning id into v_owner;
        v_rule := 'first-contact';
    elsif p_display_name is not null then
        update customer set display_name = p_display_name where id = v_owner and display_name is null;
    end if;

    update identifier
    set customer_id = v_owner, linked_at = now(), link_rule = v_rule, linked_by_interaction = p_interaction
    where id = any(v_ids) and customer_id is null;

    insert into interaction_identifier (interaction_id, identifier_id, verification)
    select p_interaction, identifier_id, level from unnest(v_ids, v_levels) as t (identifier_id, level)
    on conflict (interaction_id, identifier_id) do update set verification = excluded.verification;

    return v_owner;
end;
$$;

-- Storing one event: upsert the interaction by its key and link its identifiers, in one call.
-- Deliveries of one key fold into one interaction, in any order:
--  * a higher revision wins field by field where it has a value (fields it leaves out keep earlier values);
--  * an equal or lower revision only fills fields still missing;
--  * occurred_at is the earliest time reported, transfer_count the largest.
-- When nothing would change, no row is returned (a duplicate).

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
    p_display_name       text
) returns table (o_interaction_id uuid, o_created boolean, o_customer_id uuid)
language plpgsql
as $$
begin
    return query
    with upserted as (
        insert into interaction as i (
            source, external_id, channel, direction, status, revision, occurred_at, answered_at, ended_at,
            agent, queue, thread_key, subject, reason, disposition,
            queue_wait_seconds, hold_seconds, talk_seconds, transfer_count, event, raw_event_id, identified
        )
        values (p_source, p_external_id, p_channel, p_direction, p_status, p_revision, p_occurred_at,
                p_answered_at, p_ended_at, p_agent, p_queue, p_thread_key, p_subject, p_reason, p_disposition,
                p_queue_wait_seconds, p_hold_seconds, p_talk_seconds, p_transfer_count, p_event, p_raw_event_id,
                cardinality(p_kinds) > 0)
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
