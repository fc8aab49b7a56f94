-- migrate:up transaction:false
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_lower_idx ON users (lower(email::text));

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS users_email_lower_idx;
