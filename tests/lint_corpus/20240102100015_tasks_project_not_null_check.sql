-- migrate:up
-- NOT NULL in three steps (this is step 1): a CHECK that is not validated yet.
ALTER TABLE tasks
    ADD CONSTRAINT tasks_project_id_not_null CHECK (project_id IS NOT NULL) NOT VALID;

-- migrate:down
ALTER TABLE tasks DROP CONSTRAINT tasks_project_id_not_null;
