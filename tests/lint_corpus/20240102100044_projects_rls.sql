-- migrate:up
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
CREATE POLICY projects_by_org ON projects
    USING (org_id = current_setting('app.org_id')::bigint);

-- migrate:down
DROP POLICY projects_by_org ON projects;
ALTER TABLE projects DISABLE ROW LEVEL SECURITY;
