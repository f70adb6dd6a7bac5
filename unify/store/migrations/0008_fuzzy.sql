-- Fuzzy merge suggestions: customers whose names look alike are found with trigrams (pg_trgm), then scored in
-- Python (unify.identity.fuzzy) with the attributes their groups share. Fuzzy evidence only ever suggests.

create extension if not exists pg_trgm;
create extension if not exists unaccent;

-- The form of a display name trigrams are compared on: accents stripped, lower case, every run of characters
-- other than letters one space ('Zoë  O''Brien-Smith 2' → 'zoe o brien smith'); null when no letter is left.
-- Immutable, as a generated column needs: the body is bound to the unaccent function and dictionary when it is
-- created, whatever the search path later.
create function customer_name_key(p_name text) returns text
language sql immutable parallel safe strict
return nullif(btrim(regexp_replace(lower(unaccent('unaccent'::regdictionary, p_name)), '[^[:alpha:]]+', ' ', 'g')),
              '');

-- Stored rather than indexed as an expression: candidate searches recheck and rank many rows per name, and
-- computing the key for each of them would dominate the scan. Follows display_name (set, merged or erased).
alter table customer add column name_key text generated always as (customer_name_key(display_name)) stored;

-- Only roots stand for a customer, so only their names are searched (the names of customers merged into a root
-- are still compared once the root is a candidate).
create index customer_root_name_trgm on customer using gin (name_key gin_trgm_ops) where root_id = id;
