-- migrate:up
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'task_status') THEN
        CREATE TYPE task_status AS ENUM ('todo', 'doing', 'done');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'tasks_project_owner_fk') THEN
        ALTER TABLE tasks ADD CONSTRAINT tasks_project_owner_fk -- expect: constraint-not-valid
            FOREIGN KEY (project_id) REFERENCES projects (id);
    END IF;
END
$$;

-- migrate:down
DROP TYPE IF EXISTS task_status;
