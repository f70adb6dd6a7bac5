-- unify: what a person decided about two customers is not overridden by the next event.
-- A person who undoes a merge, or rejects a suggestion to merge, says that two customers are different people. Until
-- now the next event naming both undid that decision: an authenticated one merged them again (rule
-- 'strong-evidence'), a weak one raised the same suggestion again as if nobody had looked at it. Now such a pair is
-- "kept apart": merge_conflict (migration 0007), which every automatic merge and every suggestion consults, names the
-- decision, so the event raises a *conflicting* suggestion carrying it (reason and time) for a person to look at
-- again, and merges nothing. A merge a person asks for (POST /v1/customers/{id}/merge, accepting a suggestion) says
-- so (`by_person` in the limits it passes) and goes ahead: a person may change their mind.

-- The latest decision keeping the groups of roots p_a and p_b apart, in words; null when there is none. A decision
-- about any customer of one group and any of the other counts (the groups are as they are now).
create function customers_kept_apart(p_a uuid, p_b uuid) returns text
language sql stable
return (
    select d.words
    from (
        select format('a person undid their merge at %s (%s)', m.undone_at, coalesce(m.undo_reason, 'no reason given'))
                   as words,
               m.undone_at as decided_at
        from customer_merge m
        join customer s on s.id = m.survivor_id
        join customer x on x.id = m.merged_id
        where m.undone_at is not null
          and ((s.root_id = p_a and x.root_id = p_b) or (s.root_id = p_b and x.root_id = p_a))
        union all
        select format('a person rejected merging them at %s (%s)', g.decided_at,
                      coalesce(g.decision_reason, 'no reason given')),
               g.decided_at
        from merge_suggestion g
        join customer a on a.id = g.customer_a
        join customer b on b.id = g.customer_b
        where g.status = 'rejected'
          and ((a.root_id = p_a and b.root_id = p_b) or (a.root_id = p_b and b.root_id = p_a))
    ) as d
    order by d.decided_at desc
    limit 1
);

-- As in 0007 (a per-kind limit the union would break), and then a decision keeping them apart, unless a person asks
-- for the merge (p_limits ->> 'by_person').
create or replace function merge_conflict(p_a uuid, p_b uuid, p_limits jsonb) returns text
language sql stable
return coalesce(
    (
        select format('%s identifiers: %s together, limit %s', d.kind, count(*), (p_limits ->> d.kind))
        from identifier d
        join customer c on c.id = d.customer_id
        where c.root_id in (p_a, p_b) and not d.shared and p_limits ? d.kind
        group by d.kind
        having count(*) > (p_limits ->> d.kind)::integer
        order by d.kind
        limit 1
    ),
    case when not coalesce((p_limits ->> 'by_person')::boolean, false) then customers_kept_apart(p_a, p_b) end
);

-- Finding the decisions about a customer: its merges from either side, its rejected suggestions from either side.
create index customer_merge_undone on customer_merge (merged_id) where undone_at is not null;
create index customer_merge_undone_survivor on customer_merge (survivor_id) where undone_at is not null;
create index merge_suggestion_rejected on merge_suggestion (customer_a, customer_b) where status = 'rejected';
