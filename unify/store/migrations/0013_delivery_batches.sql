-- unify: one-event deliveries committed together (group commit). Under load, many webhooks and native posts carry
-- one event each and arrive at the same moment; committing each in its own statement and transaction costs a round
-- trip, a statement start and a WAL flush per delivery. A worker gathers the deliveries that arrive while its
-- earlier batches are still being written, and stores them with this function: in one statement, in the order
-- given, each exactly as `ingest_single_event` stores one delivery (its raw row first, then its event, then the
-- event's identifiers). One statement is one transaction: either every delivery of the batch is kept or none is,
-- and the server then stores each alone (so that one bad delivery fails alone). A group waits for a lock at most
-- 200 ms (a customer held by an erasure or a merge): it then gives up, and each of its deliveries is stored alone,
-- so that only the one needing that customer waits for it.
--
-- Events are given as parallel arrays, one element per delivery. Identifiers are flattened: delivery i's are the
-- p_identifier_count[i] elements of p_kinds/p_values/p_levels that follow those of deliveries 1 … i-1.
create function ingest_single_event_batch(
    p_source             text[],
    p_external_id        text[],
    p_channel            text[],
    p_direction          text[],
    p_status             text[],
    p_revision           bigint[],
    p_occurred_at        timestamptz[],
    p_answered_at        timestamptz[],
    p_ended_at           timestamptz[],
    p_agent              text[],
    p_queue              text[],
    p_thread_key         text[],
    p_subject            text[],
    p_reason             text[],
    p_disposition        text[],
    p_queue_wait_seconds double precision[],
    p_hold_seconds       double precision[],
    p_talk_seconds       double precision[],
    p_transfer_count     integer[],
    p_event              jsonb[],
    p_identifier_count   integer[],
    p_kinds              text[],
    p_values             text[],
    p_levels             text[],
    p_display_name       text[],
    p_route              text[],
    p_content_type       text[],
    p_headers            text[],  -- JSON arrays of [name, value] (an array parameter cannot hold lists)
    p_body               bytea[],
    p_body_size          bigint[],
    p_key_id             text[],
    p_redactions         jsonb[],
    p_policy             jsonb
) returns table (o_raw_event_id bigint, o_interaction_id uuid, o_created boolean, o_customer_id uuid)
language plpgsql
set lock_timeout = '200ms'
as $$
declare
    v_first integer := 1;  -- where delivery i's identifiers start in the flattened arrays
    v_last  integer;
    v_up    record;
begin
    for i in 1 .. coalesce(cardinality(p_source), 0) loop
        v_last := v_first + p_identifier_count[i] - 1;
        insert into raw_event (
            route, content_type, headers, body, body_size, truncated, status, processed_at, key_id, event_keys
        )
        values (p_route[i], p_content_type[i], p_headers[i]::jsonb, p_body[i], p_body_size[i], false, 'processed', now(),
                p_key_id[i], array[p_source[i] || '/' || p_external_id[i]])
        returning id into o_raw_event_id;
        select * into v_up
        from upsert_interaction_event(p_source[i], p_external_id[i], p_channel[i], p_direction[i], p_status[i],
                                      p_revision[i], p_occurred_at[i], p_answered_at[i], p_ended_at[i], p_agent[i],
                                      p_queue[i], p_thread_key[i], p_subject[i], p_reason[i], p_disposition[i],
                                      p_queue_wait_seconds[i], p_hold_seconds[i], p_talk_seconds[i],
                                      p_transfer_count[i], p_event[i], o_raw_event_id, p_identifier_count[i] > 0,
                                      p_redactions[i]);
        o_interaction_id := v_up.o_interaction_id;
        o_created := v_up.o_created;
        o_customer_id := null;
        if o_interaction_id is not null then
            o_customer_id := link_interaction_identifiers(o_interaction_id, p_kinds[v_first:v_last],
                                                          p_values[v_first:v_last], p_levels[v_first:v_last],
                                                          v_up.o_occurred_at, p_display_name[i], p_policy);
        else  -- a duplicate: nothing changed; name the interaction it repeats
            select i2.id into o_interaction_id
            from interaction i2 where i2.source = p_source[i] and i2.external_id = p_external_id[i];
        end if;
        v_first := v_last + 1;
        return next;
    end loop;
end;
$$;
