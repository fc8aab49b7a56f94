-- migrate:up
CREATE INDEX events_user_idx ON events (user_id); -- expect: index-not-concurrent

-- migrate:down
DROP INDEX events_user_idx;
