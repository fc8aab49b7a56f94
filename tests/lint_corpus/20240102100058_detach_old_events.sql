-- migrate:up
ALTER TABLE events DETACH PARTITION events_2024_01 CONCURRENTLY; -- expect: concurrently-in-transaction

-- migrate:down
ALTER TABLE events ATTACH PARTITION events_2024_01 FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
