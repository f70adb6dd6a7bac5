-- unify: the consistency audit spreads a report over several connections, so its working tables are shared.
-- A report used to build its tables of the range (each interaction with its customer's contacts before and after
-- it, journeys) as temporary tables, which only the connection that made them can read: one core did all the work.
-- Now each report opens a run: a schema of its own (`audit_run_<id>`) holding unlogged tables, which every
-- connection of the report can read and fill. The run is recorded here with the server process of the connection
-- that opened it, and closed (the schema dropped) when the report ends. A run whose opening process is gone (the
-- report's process died, or lost its connection) was left behind: the next report closes it.

create table audit_run (
    id            text primary key check (id ~ '^[0-9a-f]{32}$'),
    started_at    timestamptz not null default now(),
    backend_pid   integer not null,
    backend_start timestamptz not null
);

comment on table audit_run is
    'Consistency reports under way: each has the schema audit_run_<id> (unlogged working tables) until it ends.';

-- Opens a run: records it and creates its schema; returns the schema's name.
create function audit_run_open(p_id text) returns text
language plpgsql as $$
declare
    v_schema text := 'audit_run_' || p_id;
begin
    insert into audit_run (id, backend_pid, backend_start)
    select p_id, a.pid, a.backend_start from pg_stat_activity a where a.pid = pg_backend_pid();
    execute format('create schema %I', v_schema);
    return v_schema;
end;
$$;

-- Closes a run: forgets it, then drops its schema and everything in it (the row first, as the sweep locks it
-- first). Closing a closed run does nothing.
create function audit_run_close(p_id text) returns void
language plpgsql as $$
begin
    delete from audit_run where id = p_id;
    execute format('drop schema if exists %I cascade', 'audit_run_' || p_id);
end;
$$;

-- Closes the runs whose opening server process is gone (left behind mid-report); returns how many. A run being
-- closed or swept by someone else is skipped, and so is one whose tables are still in use (lock_timeout).
create function audit_runs_sweep() returns integer
language plpgsql as $$
declare
    v_id text;
    v_closed integer := 0;
begin
    perform set_config('lock_timeout', '1s', true);
    for v_id in
        select r.id
        from audit_run r
        where not exists (select 1 from pg_stat_activity a
                          where a.pid = r.backend_pid and a.backend_start = r.backend_start)
        order by r.started_at
        for update skip locked
    loop
        perform audit_run_close(v_id);
        v_closed := v_closed + 1;
    end loop;
    return v_closed;
end;
$$;
