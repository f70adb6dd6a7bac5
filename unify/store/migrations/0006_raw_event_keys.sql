-- Which events a raw delivery carried, as `source/external_id` keys (source names never contain '/'), so that every
-- delivery of an interaction can be found again (erasure), not only the one its latest revision came from.
-- Null for deliveries that were rejected before any event was read.
alter table raw_event add column event_keys text[];
