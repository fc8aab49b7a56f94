-- seedkit: transaction=false
DROP INDEX CONCURRENTLY IF EXISTS projects_org_slug_idx;
