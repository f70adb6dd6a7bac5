-- unify: the live stream (GET /v1/stream).
-- Every committed insert or update of an interaction sends one short notice on the channel `unify_interaction`
-- (LISTEN/NOTIFY, so every server worker hears it whichever worker ingested it); a listening worker with stream
-- clients turns the ids it hears into compact JSON notices with interaction_notice.
-- * The trigger is a deferred constraint trigger: it fires at commit, after the same transaction linked the event's
--   identifiers (ingest upserts the interaction first and links afterwards), so the notice names the customer.
-- * A transaction that ran `set local unify.notify = 'off'` sends nothing: the bulk importer does, a million
--   notices nobody watches being pointless load. The WHEN clause is evaluated at the row, so no trigger event is
--   even queued for it.
-- * NOTIFY payloads must stay below 8000 bytes: at most 50 identifiers and about 3000 bytes of them are sent
--   (`identifiers_truncated` says so); an interaction whose agent or queue name is too long for the rest is sent
--   without them and without identifiers.

create function interaction_notice(p_interaction uuid, p_change text) returns text
language plpgsql stable
as $$
declare
    v_identifiers text[];
    v_truncated   boolean;
    v_payload     text;
    r             interaction%rowtype;
begin
    select * into r from interaction where id = p_interaction;
    if not found then
        return null;  -- deleted again before commit
    end if;
    select coalesce(array_agg(s.item order by s.ord) filter (where s.ord <= 50 and s.used <= 3000), '{}'),
           coalesce(bool_or(s.ord > 50 or s.used > 3000), false)
      into v_identifiers, v_truncated
    from (
        select d.kind || ':' || d.value as item,
               row_number() over w as ord,
               sum(octet_length(d.kind) + octet_length(d.value) + 4) over w as used
        from interaction_identifier ii
        join identifier d on d.id = ii.identifier_id
        where ii.interaction_id = p_interaction
        window w as (order by verification_rank(ii.verification) desc, d.kind, d.value, d.id)
    ) s;
    v_payload := json_build_object(
        'interaction_id', r.id,
        'customer_id', interaction_customer(r.id),
        'change', p_change,
        'channel', r.channel,
        'direction', r.direction,
        'status', r.status,
        'revision', r.revision,
        'occurred_at', r.occurred_at,
        'agent', r.agent,
        'queue', r.queue,
        'identifiers', v_identifiers,
        'identifiers_truncated', v_truncated
    )::text;
    if octet_length(v_payload) > 7900 then
        v_payload := json_build_object(
            'interaction_id', r.id,
            'customer_id', interaction_customer(r.id),
            'change', p_change,
            'channel', r.channel,
            'direction', r.direction,
            'status', r.status,
            'revision', r.revision,
            'occurred_at', r.occurred_at,
            'identifiers', '{}'::text[],
            'identifiers_truncated', true
        )::text;
    end if;
    return v_payload;
end;
$$;

-- The notice itself is only `<interaction id> <created|updated>`: building the whole notice for every write costs the
-- ingest path about a third of its rate, so each listening server builds it (interaction_notice) for the ids it
-- hears, and only while it has stream clients.
create function notify_interaction() returns trigger
language plpgsql
as $$
begin
    if current_setting('unify.notify', true) = 'off' then
        return null;
    end if;
    perform pg_notify('unify_interaction',
                      new.id::text || case tg_op when 'INSERT' then ' created' else ' updated' end);
    return null;
end;
$$;

create constraint trigger interaction_notify
    after insert or update on interaction
    deferrable initially deferred
    for each row
    when (current_setting('unify.notify', true) is distinct from 'off')
    execute function notify_interaction();
