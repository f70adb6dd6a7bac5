-- unify: the identifier that attributes each interaction to its customer, kept on the interaction.
-- The rule does not change (migrations 0007 and 0010): an interaction belongs to the root of the customer owning its
-- most strongly verified (as this interaction saw it), unshared, linked identifier, the earliest linked first. What
-- changes is when the rule is applied: on every write that can change its outcome, by the triggers below, instead of
-- on every read. A read then follows one column (interaction → identifier → customer → root) instead of ranking all
-- of an interaction's links; the consistency audit attributed a million interactions in about 5 s that way, now in
-- one hash join.
-- * Merges and their undo change customer.root_id only, never the owning identifier: the column is untouched and an
--   interaction follows its identifier's customer into and out of a group, as before. Interactions are still never
--   rewritten to a customer id.
-- * What can change the owning identifier: an interaction's links (inserted, verification raised, deleted), and an
--   identifier becoming shared or unshared, linked or unlinked, or linked again (linked_at: a detach).
-- * The column is not indexed (a customer's interactions are found through its identifiers' links, which are), so
--   that setting it is a HOT update of the row the same transaction just wrote.

alter table interaction add column owner_identifier_id bigint;

-- The rule itself, for any set of interactions: their owning identifier, or null (unidentified).
create function interaction_owners(p_interactions uuid[])
returns table (interaction_id uuid, owner_identifier_id bigint)
language sql stable
as $$
    select a.id,
           (array_agg(d.id order by verification_rank(ii.verification) desc, d.linked_at, d.id)
                filter (where d.id is not null))[1]
    from (select distinct x.id from unnest(p_interactions) as x (id)) a
    left join interaction_identifier ii on ii.interaction_id = a.id
    left join identifier d on d.id = ii.identifier_id and not d.shared and d.customer_id is not null
    group by a.id
$$;

-- Applies the rule to these interactions, writing only those whose owner changed. For the rarer changes (a detach,
-- an identifier marked shared, the importer's bulk step, deletions): planned for each call (about 1 ms) with the
-- array's length known, so that a large set is hash-joined and a small one read through the indexes. Each ingest
-- goes through the row trigger below instead.
create function refresh_interaction_owners(p_interactions uuid[]) returns void
language plpgsql
as $$
begin
    update interaction i
    set owner_identifier_id = o.owner_identifier_id
    from interaction_owners(p_interactions) o
    where i.id = o.interaction_id and i.owner_identifier_id is distinct from o.owner_identifier_id;
end;
$$;

-- A link inserted, or its verification raised: the new link owns the interaction when it can own (linked, not
-- shared) and outranks the current owner; otherwise nothing changes (a link only ever adds evidence). Row level: an
-- ingest adds one to three links, and three primary-key reads cost less than ranking the links again.
create function interaction_link_added() returns trigger
language plpgsql
as $$
declare
    v_linked_at timestamptz;
    v_current   bigint;
    v_outranks  boolean;
begin
    select coalesce(d.linked_at, 'infinity') into v_linked_at
    from identifier d
    where d.id = new.identifier_id and not d.shared and d.customer_id is not null;
    if not found then
        return null;  -- it cannot own anything
    end if;
    -- locked: a refresh of this interaction by another transaction (below) waits for this one, and the other way
    -- round (ingest has it locked already, from writing it)
    select i.owner_identifier_id into v_current from interaction i where i.id = new.interaction_id for update;
    if not found or v_current = new.identifier_id then
        return null;
    end if;
    if v_current is not null then
        select verification_rank(new.verification) > verification_rank(ii.verification)
               or (verification_rank(new.verification) = verification_rank(ii.verification)
                   and (v_linked_at, new.identifier_id) < (coalesce(d.linked_at, 'infinity'), d.id))
          into v_outranks
        from interaction_identifier ii
        join identifier d on d.id = ii.identifier_id
        where ii.interaction_id = new.interaction_id and ii.identifier_id = v_current;
        if not coalesce(v_outranks, true) then
            return null;
        end if;
    end if;
    update interaction set owner_identifier_id = new.identifier_id where id = new.interaction_id;
    return null;
end;
$$;

create trigger interaction_link_inserted after insert on interaction_identifier
    for each row when (current_setting('unify.links_in_bulk', true) is distinct from 'on')
    execute function interaction_link_added();
create trigger interaction_link_raised after update on interaction_identifier
    for each row when (old.verification is distinct from new.verification
                       and current_setting('unify.links_in_bulk', true) is distinct from 'on')
    execute function interaction_link_added();

-- Links written in bulk (the importer's set-based step, below) or deleted (an erasure, retention): the owners of
-- their interactions are derived again in one statement.
create function interaction_links_changed() returns trigger
language plpgsql
as $$
declare
    v_interactions uuid[];
begin
    if tg_op <> 'DELETE' then
        -- The identifiers linked, share-locked in id order before the owners are derived (in a statement of their
        -- own, so with a snapshot taken after the wait): a concurrent detach or shared-marking of one of them either
        -- commits first and is seen, or waits for this transaction and then sees these links.
        perform 1 from (select d.id from identifier d
                        where d.id in (select c.identifier_id from changed_links c)
                        order by d.id
                        for share) as locked;
    end if;
    v_interactions := array(select distinct c.interaction_id from changed_links c);
    if cardinality(v_interactions) > 0 then
        perform refresh_interaction_owners(v_interactions);
    end if;
    return null;
end;
$$;

create trigger interaction_links_inserted_in_bulk after insert on interaction_identifier
    referencing new table as changed_links
    for each statement when (current_setting('unify.links_in_bulk', true) = 'on')
    execute function interaction_links_changed();
create trigger interaction_links_updated_in_bulk after update on interaction_identifier
    referencing new table as changed_links
    for each statement when (current_setting('unify.links_in_bulk', true) = 'on')
    execute function interaction_links_changed();
create trigger interaction_links_deleted after delete on interaction_identifier
    referencing old table as changed_links
    for each statement execute function interaction_links_changed();

-- The importer records most of a chunk's links in one INSERT (migration 0009): there the row triggers above would
-- cost 0.1 ms a link, so the whole step runs with unify.links_in_bulk on; the linking rule it calls for the other
-- rows sets it off again for its own links.
alter function import_link_staged(jsonb) set unify.links_in_bulk = 'on';
alter function link_interaction_identifiers(uuid, text[], text[], text[], timestamptz, text, jsonb)
    set unify.links_in_bulk = 'off';

-- An identifier shared or unshared, linked, unlinked or linked again, or deleted: every interaction carrying it.
-- Row level with a WHEN clause, so that the frequent updates that change none of these (last seen, verification)
-- queue nothing.
create function identifier_ownership_changed() returns trigger
language plpgsql
as $$
declare
    v_carrying uuid[];
begin
    -- The interactions carrying it, locked in id order first: one that an ingest is adding links to right now is
    -- waited for, so that the refresh (a statement of its own, with a snapshot taken after the wait) sees those
    -- links too. Without the lock, an ingest linking another identifier to the same interaction at the same moment
    -- would rank it against this identifier as it was, and this refresh would not see the new link.
    select coalesce(array_agg(l.id order by l.id), '{}') into v_carrying
    from (select i.id from interaction i
          where i.id in (select ii.interaction_id from interaction_identifier ii
                         where ii.identifier_id = case tg_op when 'DELETE' then old.id else new.id end)
          order by i.id
          for update of i) as l;
    if cardinality(v_carrying) > 0 then  -- an identifier being linked for the first time usually has none yet
        perform refresh_interaction_owners(v_carrying);
    end if;
    return null;
end;
$$;

create trigger identifier_ownership_updated after update on identifier
    for each row
    when (old.shared is distinct from new.shared
          or (old.customer_id is null) <> (new.customer_id is null)
          or old.linked_at is distinct from new.linked_at)
    execute function identifier_ownership_changed();
create trigger identifier_ownership_deleted after delete on identifier
    for each row execute function identifier_ownership_changed();

-- The interactions there are: the rule of interaction_owners() written for the whole table at once (one sort of
-- every link, 2 s for a million interactions, where the array form takes 39 s).
update interaction i
set owner_identifier_id = o.identifier_id
from (
    select distinct on (ii.interaction_id) ii.interaction_id, d.id as identifier_id
    from interaction_identifier ii
    join identifier d on d.id = ii.identifier_id
    where not d.shared and d.customer_id is not null
    order by ii.interaction_id, verification_rank(ii.verification) desc, d.linked_at, d.id
) o
where i.id = o.interaction_id;

-- Reads follow the column. Same view, same functions, same answers (interaction_customer, migration 0010, reads
-- this view).
create or replace view interaction_owner as
select i.id as interaction_id, c.root_id as customer_id
from interaction i
join identifier d on d.id = i.owner_identifier_id
join customer c on c.id = d.customer_id;

-- The group's interactions: those owned by one of its identifiers, found through the identifiers' links.
create or replace function customer_interactions(p_root uuid) returns setof interaction
language sql stable
as $$
    select i.*
    from customer c
    join identifier d on d.customer_id = c.id
    join interaction_identifier ii on ii.identifier_id = d.id
    join interaction i on i.id = ii.interaction_id and i.owner_identifier_id = d.id
    where c.root_id = p_root and not d.shared
$$;

-- The live stream's trigger (migration 0011) fired on any update of an interaction; setting the owner right after
-- ingest wrote the row would send a second notice for every new interaction. Updates that only set the owner send
-- none (the ingest that caused them has sent its own).
drop trigger interaction_notify on interaction;
create constraint trigger interaction_notify
    after insert on interaction
    deferrable initially deferred
    for each row
    when (current_setting('unify.notify', true) is distinct from 'off')
    execute function notify_interaction();
create constraint trigger interaction_notify_update
    after update on interaction
    deferrable initially deferred
    for each row
    when (current_setting('unify.notify', true) is distinct from 'off'
          and old.owner_identifier_id is not distinct from new.owner_identifier_id)
    execute function notify_interaction();
