-- unify: an import derives the owners of its interactions once per chunk, instead of at every link.
-- Migration 0014 keeps each interaction's owning identifier up to date on every write that can change it: a link
-- added (row trigger, or one statement trigger for the importer's bulk step) and an identifier shared, linked or
-- unlinked (row trigger, refreshing every interaction carrying it). Inside an import chunk the linking rule, taking
-- rows one by one, fires them thousands of times, and a busy identifier (a switchboard being marked shared) has its
-- interactions derived again each time. Nothing in the rule reads the owners (they only serve reads), so a chunk now
-- defers them (`unify.owners_deferred`): the link triggers stand aside, the identifier triggers give way to ones
-- that only note the identifier, and at the end of the chunk the owners of its interactions and of those carrying a
-- noted identifier are derived once, with the same locks the triggers take, in the same order. The owners are the
-- same (a function of the links and identifiers as the chunk leaves them); the import tests compare them with
-- streaming ingest's.

drop trigger interaction_link_inserted on interaction_identifier;
create trigger interaction_link_inserted after insert on interaction_identifier
    for each row when (current_setting('unify.links_in_bulk', true) is distinct from 'on'
                       and current_setting('unify.owners_deferred', true) is distinct from 'on')
    execute function interaction_link_added();
drop trigger interaction_link_raised on interaction_identifier;
create trigger interaction_link_raised after update on interaction_identifier
    for each row when (old.verification is distinct from new.verification
                       and current_setting('unify.links_in_bulk', true) is distinct from 'on'
                       and current_setting('unify.owners_deferred', true) is distinct from 'on')
    execute function interaction_link_added();
drop trigger interaction_links_inserted_in_bulk on interaction_identifier;
create trigger interaction_links_inserted_in_bulk after insert on interaction_identifier
    referencing new table as changed_links
    for each statement when (current_setting('unify.links_in_bulk', true) = 'on'
                             and current_setting('unify.owners_deferred', true) is distinct from 'on')
    execute function interaction_links_changed();
drop trigger interaction_links_updated_in_bulk on interaction_identifier;
create trigger interaction_links_updated_in_bulk after update on interaction_identifier
    referencing new table as changed_links
    for each statement when (current_setting('unify.links_in_bulk', true) = 'on'
                             and current_setting('unify.owners_deferred', true) is distinct from 'on')
    execute function interaction_links_changed();

-- The identifier triggers of 0014 stand aside too; these note the identifier instead.
create function identifier_ownership_noted() returns trigger
language plpgsql
as $$
begin
    insert into import_owner_identifier (identifier_id)
    values (case tg_op when 'DELETE' then old.id else new.id end)
    on conflict do nothing;
    return null;
end;
$$;

drop trigger identifier_ownership_updated on identifier;
create trigger identifier_ownership_updated after update on identifier
    for each row
    when ((old.shared is distinct from new.shared
           or (old.customer_id is null) <> (new.customer_id is null)
           or old.linked_at is distinct from new.linked_at)
          and current_setting('unify.owners_deferred', true) is distinct from 'on')
    execute function identifier_ownership_changed();
create trigger identifier_ownership_noted after update on identifier
    for each row
    when ((old.shared is distinct from new.shared
           or (old.customer_id is null) <> (new.customer_id is null)
           or old.linked_at is distinct from new.linked_at)
          and current_setting('unify.owners_deferred', true) = 'on')
    execute function identifier_ownership_noted();
drop trigger identifier_ownership_deleted on identifier;
create trigger identifier_ownership_deleted after delete on identifier
    for each row when (current_setting('unify.owners_deferred', true) is distinct from 'on')
    execute function identifier_ownership_changed();
create trigger identifier_ownership_deleted_noted after delete on identifier
    for each row when (current_setting('unify.owners_deferred', true) = 'on')
    execute function identifier_ownership_noted();

-- Migration 0016's chunk step, unchanged, now run with the owners deferred by the function of its name below.
alter function import_link_staged(jsonb) rename to import_link_staged_rows;

create function import_link_staged(
    p_policy jsonb,
    out o_recorded integer,
    out o_linked integer,
    out o_linked_new integer,
    out o_linked_bridge integer,
    out o_classify_ms double precision,
    out o_link_ms double precision,
    out o_record_ms double precision
)
language plpgsql
set unify.owners_deferred = 'on'
as $$
declare
    v_started timestamptz;
    v_interactions uuid[];
begin
    create temp table import_owner_identifier (identifier_id bigint primary key) on commit drop;
    select s.o_recorded, s.o_linked, s.o_linked_new, s.o_linked_bridge, s.o_classify_ms, s.o_link_ms, s.o_record_ms
    into o_recorded, o_linked, o_linked_new, o_linked_bridge, o_classify_ms, o_link_ms, o_record_ms
    from import_link_staged_rows(p_policy) as s;

    v_started := clock_timestamp();
    -- The identifiers the chunk linked, share-locked in id order (as interaction_links_changed does), then the
    -- interactions carrying an identifier whose ownership changed, locked in id order (as
    -- identifier_ownership_changed does); then every owner that can have changed, derived once.
    perform 1 from (select d.id from identifier d
                    where d.id in (select ii.identifier_id from interaction_identifier ii
                                   where ii.interaction_id in (select l.interaction_id from import_link l))
                    order by d.id
                    for share) as locked;
    perform 1 from (select i.id from interaction i
                    where i.id in (select ii.interaction_id from interaction_identifier ii
                                   where ii.identifier_id in (select c.identifier_id from import_owner_identifier c))
                    order by i.id
                    for update of i) as locked;
    v_interactions := array(
        select l.interaction_id from import_link l where l.interaction_id is not null
        union
        select ii.interaction_id from interaction_identifier ii
        where ii.identifier_id in (select c.identifier_id from import_owner_identifier c)
    );
    if cardinality(v_interactions) > 0 then
        perform refresh_interaction_owners(v_interactions);
    end if;
    drop table import_owner_identifier;
    o_record_ms := o_record_ms + extract(epoch from clock_timestamp() - v_started) * 1000;
end;
$$;
