-- Erasure: one audit row per customer erased (`DELETE /v1/customers/{id}`).
-- The log proves that an erasure happened, who asked for it and why, and how much went. It holds no personal data:
-- not the customer's id, identifiers or name; only counts of what was deleted.

create table erasure_log (
    id         uuid        primary key default uuidv7(),
    erased_at  timestamptz not null default now(),
    -- The API key that asked (api_key.id). No foreign key: the log outlives the keys it names.
    actor      uuid        not null,
    reason     text        not null check (char_length(reason) between 3 and 500),
    -- What was deleted, by kind: {"interactions": n, "identifiers": n, "raw_events": n, "fragments": n}.
    counts     jsonb       not null
);
create index erasure_log_erased_at on erasure_log (erased_at);
