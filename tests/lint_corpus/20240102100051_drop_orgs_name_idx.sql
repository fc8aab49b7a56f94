-- migrate:up transaction:false
DROP INDEX CONCURRENTLY IF EXISTS orgs_name_idx;

-- migrate:down transaction:false
CREATE INDEX CONCURRENTLY IF NOT EXISTS orgs_name_idx ON orgs (name);
