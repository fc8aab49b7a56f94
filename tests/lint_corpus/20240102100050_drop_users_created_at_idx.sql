-- migrate:up
DROP INDEX users_created_at_idx; -- expect: drop-index-not-concurrent

-- migrate:down
CREATE INDEX users_created_at_idx ON users (created_at DESC);
