-- migrate:up
CREATE INDEX CONCURRENTLY tasks_due_at_idx ON tasks (due_at) WHERE due_at IS NOT NULL; -- expect: concurrently-in-transaction

-- migrate:down
DROP INDEX tasks_due_at_idx;
