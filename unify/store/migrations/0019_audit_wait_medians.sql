-- unify: the consistency audit takes its medians and percentiles from each channel's values in order, not from a
-- sort per figure.
-- A cell of the waits tests (Mood's median test; a reason, or every reason) needs nine medians: the pooled one, each
-- channel's, and for each channel the median of the other channels' values. As `percentile_disc` aggregates, each of
-- those sorted its own values again (five times the cell's values, and again for every reason), then every value
-- was compared with its cell's pooled median. Now the report sorts each channel's values of a cell once (an array in
-- order) and takes every median and count from those four arrays: a channel's median is an element of its array; a
-- median of several channels is found by bisection, counting the values at or below a candidate with `width_bucket`
-- (a binary search in each array). The values are those `percentile_disc` gives.

-- Values of each channel, each array in ascending order, without nulls (null or empty: the channel has none).
create type audit_channel_values as (
    voice double precision[],
    sms   double precision[],
    email double precision[],
    chat  double precision[]
);

-- How many values of the channels `p_with` (voice, sms, email, chat) are at or below p_at.
create function audit_values_at_or_below(p_values audit_channel_values, p_with boolean[], p_at double precision)
returns bigint
language sql immutable
return case when p_with[1] then coalesce(width_bucket(p_at, p_values.voice), 0) else 0 end
     + case when p_with[2] then coalesce(width_bucket(p_at, p_values.sms), 0) else 0 end
     + case when p_with[3] then coalesce(width_bucket(p_at, p_values.email), 0) else 0 end
     + case when p_with[4] then coalesce(width_bucket(p_at, p_values.chat), 0) else 0 end;

-- The percentile p_fraction of the values of the channels `p_with` taken together, as percentile_disc takes it: the
-- value at position ceil(p_fraction × n) (at least 1) in their order; null when they have none. It is the smallest
-- value with at least that many values at or below it, found in each channel's array by bisection; the least of
-- those is the one. The arrays are read as fields of p_values: an array parameter would be copied whole for every
-- width_bucket.
create function audit_values_percentile(p_values audit_channel_values, p_with boolean[], p_fraction double precision)
returns double precision
language plpgsql immutable
as $$
declare
    v_sizes constant integer[] := array[
        coalesce(cardinality(p_values.voice), 0), coalesce(cardinality(p_values.sms), 0),
        coalesce(cardinality(p_values.email), 0), coalesce(cardinality(p_values.chat), 0)];
    v_rank bigint := 0;
    v_best double precision;
    v_lo integer;
    v_hi integer;
    v_mid integer;
    v_value double precision;
begin
    for c in 1 .. 4 loop
        if p_with[c] then
            v_rank := v_rank + v_sizes[c];
        end if;
    end loop;
    if v_rank = 0 then
        return null;
    end if;
    v_rank := greatest(1, ceil(p_fraction * v_rank)::bigint);
    for c in 1 .. 4 loop
        continue when not p_with[c] or v_sizes[c] = 0;
        -- the first position of channel c whose value has v_rank values at or below it, if its last one has
        v_lo := 1;
        v_hi := v_sizes[c];
        v_value := case c when 1 then p_values.voice[v_hi] when 2 then p_values.sms[v_hi]
                          when 3 then p_values.email[v_hi] else p_values.chat[v_hi] end;
        continue when audit_values_at_or_below(p_values, p_with, v_value) < v_rank;
        while v_lo < v_hi loop
            v_mid := (v_lo + v_hi) / 2;
            v_value := case c when 1 then p_values.voice[v_mid] when 2 then p_values.sms[v_mid]
                              when 3 then p_values.email[v_mid] else p_values.chat[v_mid] end;
            if audit_values_at_or_below(p_values, p_with, v_value) >= v_rank then
                v_hi := v_mid;
            else
                v_lo := v_mid + 1;
            end if;
        end loop;
        v_value := case c when 1 then p_values.voice[v_lo] when 2 then p_values.sms[v_lo]
                          when 3 then p_values.email[v_lo] else p_values.chat[v_lo] end;
        if v_best is null or v_value < v_best then
            v_best := v_value;
        end if;
    end loop;
    return v_best;
end;
$$;

-- Mood's median test of one cell: the pooled median and how many values are at or below it (in all, and per
-- channel), each channel's median, and the median of the other channels' values, for each channel.
create function audit_wait_test(
    p_values audit_channel_values,
    out o_pooled_median double precision,
    out o_le_pooled bigint,
    out o_median_channel double precision[],
    out o_median_others double precision[],
    out o_le_channel bigint[]
)
language plpgsql immutable
as $$
declare
    v_one boolean[];
begin
    o_pooled_median := audit_values_percentile(p_values, array[true, true, true, true], 0.5);
    o_median_channel := '{}';
    o_median_others := '{}';
    o_le_channel := '{}';
    for c in 1 .. 4 loop
        v_one := array[c = 1, c = 2, c = 3, c = 4];
        o_median_channel := o_median_channel || audit_values_percentile(p_values, v_one, 0.5);
        o_median_others := o_median_others
            || audit_values_percentile(p_values, array[c <> 1, c <> 2, c <> 3, c <> 4], 0.5);
        o_le_channel := o_le_channel || coalesce(audit_values_at_or_below(p_values, v_one, o_pooled_median), 0);
    end loop;
    o_le_pooled := coalesce(audit_values_at_or_below(p_values, array[true, true, true, true], o_pooled_median), 0);
end;
$$;
