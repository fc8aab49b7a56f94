-- migrate:up
CREATE INDEX users_created_at_idx ON users (created_at DESC); -- expect: index-not-concurrent

-- migrate:down
DROP INDEX users_created_at_idx;
