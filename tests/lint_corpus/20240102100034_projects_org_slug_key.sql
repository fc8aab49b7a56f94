-- migrate:up
-- The index was built concurrently by the previous migration; this only takes a brief lock.
ALTER TABLE projects ADD CONSTRAINT projects_org_slug_key UNIQUE USING INDEX projects_org_slug_idx;

-- migrate:down
ALTER TABLE projects DROP CONSTRAINT projects_org_slug_key;
