-- name: create_api_key
insert into api_key (name, secret_hash, scopes) values ($1, $2, $3) returning id, name, scopes, created_at;

-- name: get_api_key_for_check
select id, secret_hash, scopes, revoked_at from api_key where id = $1;

-- name: touch_api_key
update api_key set last_used_at = now()
where id = $1 and (last_used_at is null or last_used_at < now() - interval '1 minute');

-- name: list_api_keys
select id, name, scopes, created_at, revoked_at, last_used_at from api_key order by created_at;

-- name: revoke_api_key
update api_key set revoked_at = now() where id = $1 and revoked_at is null returning id;
