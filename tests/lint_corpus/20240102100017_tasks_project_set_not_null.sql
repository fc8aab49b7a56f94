-- migrate:up
-- Step 3: PostgreSQL 12+ uses the validated CHECK and skips the scan.
ALTER TABLE tasks ALTER COLUMN project_id SET NOT NULL;
ALTER TABLE tasks DROP CONSTRAINT tasks_project_id_not_null;

-- migrate:down
ALTER TABLE tasks ALTER COLUMN project_id DROP NOT NULL;
