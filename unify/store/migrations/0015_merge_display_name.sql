-- unify: undoing a merge restores the survivor's display name too.
-- A merge gives the survivor the merged customer's display name when the survivor had none (migration 0007); the
-- undo used to leave it there, so the survivor kept the other person's name. Each merge now records the survivor's
-- name as it was (`survivor_display_name`, null: none), and its undo gives it back when the survivor still carries
-- the name the merge gave it (a name set since, by an agent or a later event, stays).
-- Merges recorded before this migration have no such record and are undone as before.

alter table customer_merge add column survivor_display_name text, add column survivor_named boolean;

create function customer_merge_recorded() returns trigger
language plpgsql
as $$
begin
    -- merge_customers inserts the merge before it copies the name, with both customers locked
    select display_name, display_name is not null into new.survivor_display_name, new.survivor_named
    from customer where id = new.survivor_id;
    return new;
end;
$$;

create trigger customer_merge_recorded
before insert on customer_merge
for each row execute function customer_merge_recorded();

create function customer_merge_undone() returns trigger
language plpgsql
as $$
begin
    update customer s
    set display_name = new.survivor_display_name
    from customer m
    where s.id = new.survivor_id and m.id = new.merged_id
      and not new.survivor_named
      and s.display_name is not distinct from m.display_name;
    return null;
end;
$$;

create trigger customer_merge_undone
after update of undone_at on customer_merge
for each row when (old.undone_at is null and new.undone_at is not null and new.survivor_named is not null)
execute function customer_merge_undone();
