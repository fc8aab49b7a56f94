-- migrate:up
DROP TABLE IF EXISTS legacy_sessions; -- expect: drop-table

-- migrate:down
CREATE TABLE legacy_sessions (id text PRIMARY KEY);
