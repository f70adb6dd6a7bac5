-- unify: the consistency audit spreads a report over several connections, so its working tables are shared.
-- A report used to build its tables of the range (each interaction with its customer's contacts before and after
-- it, journeys) as temporary tables, which only the connection that made them can read: one core did all the work.
-- Now each report opens a run: a schema of its own (`audit_run_<id>`) holding unlogged tables, which every
-- connection of the report can read and fill. The run is recorded here, and closed (the schema dropped) when the
-- report ends; a run left behind by a process that died is closed by the next report once it is a day old.

create table audit_run (
    id         text primary key check (id ~ '^[0-9a-f]{32}$'),
    started_at timestamptz not null default now()
);

comment on table audit_run is
    'Consistency reports under way: each has the schema audit_run_<id> (unlogged working tables) until it ends.';

-- Opens a run: records it and creates its schema; returns the schema's name.
create function audit_run_open(p_id text) returns text
language plpgsql as $$
declare
    v_schema text := 'audit_run_' || p_id;
begin
    insert into audit_run (id) values (p_id);
    execute format('create schema %I', v_schema);
    return v_schema;
end;
$$;

-- Closes a run: drops its schema and everything in it, and forgets it. Closing a closed run does nothing.
create function audit_run_close(p_id text) returns void
language plpgsql as $$
begin
    execute format('drop schema if exists %I cascade', 'audit_run_' || p_id);
    delete from audit_run where id = p_id;
end;
$$;

-- Closes the runs opened more than p_age ago (left behind by a process that stopped mid-report); returns how many.
create function audit_runs_sweep(p_age interval) returns integer
language plpgsql as $$
declare
    v_id text;
    v_closed integer := 0;
begin
    for v_id in select id from audit_run where started_at < now() - p_age order by started_at for update skip locked
    loop
        perform audit_run_close(v_id);
        v_closed := v_closed + 1;
    end loop;
    return v_closed;
end;
$$;
