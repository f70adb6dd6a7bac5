-- unify: undoing a merge takes back the display name the merge gave.
-- A merge gives the survivor the merged customer's display name when the survivor had none (migration 0007), and a
-- later merge passes it on to a new root that had none; the undo used to leave it there, so the survivor kept the
-- other person's name. Each merge now records whether its survivor had a name of its own (`survivor_named`), and its
-- undo clears the merged customer's name from the survivor, and from each customer above it in its group that had
-- none of its own when it absorbed it, for as long as they still show that name (a name set since stays).
-- Merges recorded before this migration have no such record and are undone as before.

alter table customer_merge add column survivor_named boolean;

create function customer_merge_recorded() returns trigger
language plpgsql
as $$
begin
    -- merge_customers inserts the merge before it copies the name, with both customers locked
    select c.display_name is not null into new.survivor_named from customer c where c.id = new.survivor_id;
    return new;
end;
$$;

create trigger customer_merge_recorded
before insert on customer_merge
for each row execute function customer_merge_recorded();

create function customer_merge_undone() returns trigger
language plpgsql
as $$
declare
    v_name    text;
    v_current uuid := new.survivor_id;
    v_named   boolean := new.survivor_named;
begin
    select c.display_name into v_name from customer c where c.id = new.merged_id;
    if v_name is null then
        return null;
    end if;
    while not v_named loop
        update customer set display_name = null where id = v_current and display_name = v_name;
        exit when not found;
        -- the merge that put this customer under another, if any: the name went on up when that one had none
        select m.survivor_id, m.survivor_named into v_current, v_named
        from customer c
        join customer_merge m on m.survivor_id = c.merged_into and m.merged_id = c.id and m.undone_at is null
        where c.id = v_current;
        exit when not found or v_named is null;
    end loop;
    return null;
end;
$$;

create trigger customer_merge_undone
after update of undone_at on customer_merge
for each row when (old.undone_at is null and new.undone_at is not null and new.survivor_named is not null)
execute function customer_merge_undone();
