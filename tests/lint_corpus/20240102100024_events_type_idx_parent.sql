-- migrate:up
-- ON ONLY creates the parent index without touching the partitions (it is invalid until attached).
CREATE INDEX events_type_idx ON ONLY events (event_type);

-- migrate:down
DROP INDEX events_type_idx;
