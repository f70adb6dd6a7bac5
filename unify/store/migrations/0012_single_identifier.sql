-- unify: linking an event that carries one customer identifier, the common case, without the bridging machinery.
-- link_interaction_identifiers (migration 0007) stays the rule; this migration renames it
-- link_interaction_identifiers_bridging and puts in front of it a function of the same name and signature that
-- handles one identifier itself and passes every other event through unchanged. With one identifier there is
-- nothing to bridge, no limit to check and no sharing to detect (0007's own one-identifier branch decides the same,
-- and stays for the races below), so the outcome is identical; what changes is the cost per event:
-- * a known identifier is read and locked (FOR UPDATE: concurrent events on it queue as they did behind 0007's
--   INSERT … ON CONFLICT DO UPDATE) and written only when the sighting widens first/last seen or raises its
--   verification, instead of always;
-- * a new identifier is inserted already linked to its new customer (one write instead of an insert and an
--   update), without the array aggregation the general path needs for many identifiers.
-- When another event inserts the same new identifier first, the insert finds the conflict after that event
-- commits: the customer made for nothing is deleted and the general path links the event to the one now there.
alter function link_interaction_identifiers(uuid, text[], text[], text[], timestamptz, text, jsonb)
    rename to link_interaction_identifiers_bridging;

create function link_interaction_identifiers(
    p_interaction  uuid,
    p_kinds        text[],
    p_values       text[],
    p_levels       text[],
    p_seen_at      timestamptz,
    p_display_name text,
    p_policy       jsonb
) returns uuid
language plpgsql
as $$
declare
    v_level    constant text    := p_levels[1];
    v_rank     constant integer := verification_rank(p_levels[1]);
    v_found    record;
    v_id       bigint;
    v_root     uuid;
begin
    if coalesce(cardinality(p_kinds), 0) <> 1 then
        return link_interaction_identifiers_bridging(p_interaction, p_kinds, p_values, p_levels, p_seen_at,
                                                     p_display_name, p_policy);
    end if;

    select d.id, d.customer_id, d.shared, d.verification, d.first_seen, d.last_seen into v_found
    from identifier d where d.kind = p_kinds[1] and d.value = p_values[1]
    for update;
    if not found then
        insert into customer (display_name) values (p_display_name) returning id into v_root;
        insert into identifier (kind, value, verification, first_seen, last_seen, customer_id, linked_at,
                                linked_by_interaction, link_verification, linked_by, link_rule)
        values (p_kinds[1], p_values[1], v_level, p_seen_at, p_seen_at, v_root, now(), p_interaction, v_level,
                p_policy ->> 'actor', 'first-contact')
        on conflict (kind, value) do nothing
        returning id into v_id;
        if v_id is null then
            -- Another event created it meanwhile (and has committed): take the general path, without the customer
            -- made for nothing.
            delete from customer where id = v_root;
            return link_interaction_identifiers_bridging(p_interaction, p_kinds, p_values, p_levels, p_seen_at,
                                                         p_display_name, p_policy);
        end if;
    else
        v_id := v_found.id;
        if p_seen_at < v_found.first_seen or p_seen_at > v_found.last_seen
           or v_rank > verification_rank(v_found.verification) then
            update identifier
            set first_seen = least(first_seen, p_seen_at),
                last_seen = greatest(last_seen, p_seen_at),
                verification = case when v_rank > verification_rank(verification) then v_level else verification end
            where id = v_id;
        end if;
        if v_found.shared then
            v_root := null;
        elsif v_found.customer_id is not null then
            select c.root_id into v_root from customer c where c.id = v_found.customer_id;
            if p_display_name is not null then
                update customer set display_name = p_display_name where id = v_root and display_name is null;
            end if;
        else
            insert into customer (display_name) values (p_display_name) returning id into v_root;
            update identifier
            set customer_id = v_root, linked_at = now(), linked_by_interaction = p_interaction,
                link_verification = v_level, linked_by = p_policy ->> 'actor', link_rule = 'first-contact'
            where id = v_id;
        end if;
    end if;
    if p_interaction is not null then
        insert into interaction_identifier as ii (interaction_id, identifier_id, verification)
        values (p_interaction, v_id, v_level)
        on conflict (interaction_id, identifier_id) do update set verification = excluded.verification
        where verification_rank(excluded.verification) > verification_rank(ii.verification);
    end if;
    return v_root;
end;
$$;

-- The general rule visits the other customers an event names in the order of `select distinct` (0007, step 4), and
-- what it records depends on that order (a merge done first changes the evidence of the next suggestion). With hash
-- aggregation that order follows the hash of the customer ids, so two databases given the same events could record
-- different suggestions; sorting makes it the customers' order (oldest first), the same everywhere.
alter function link_interaction_identifiers_bridging(uuid, text[], text[], text[], timestamptz, text, jsonb)
    set enable_hashagg = off;
