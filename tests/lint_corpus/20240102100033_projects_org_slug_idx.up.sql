-- seedkit: transaction=false
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS projects_org_slug_idx ON projects (org_id, slug);
