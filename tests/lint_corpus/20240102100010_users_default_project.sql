-- migrate:up
ALTER TABLE users ADD COLUMN default_project_id bigint;

-- Step 1 of 2: the constraint checks new rows at once; old rows are validated in the next migration.
ALTER TABLE users
    ADD CONSTRAINT users_default_project_fk
    FOREIGN KEY (default_project_id) REFERENCES projects (id) NOT VALID;

-- migrate:down
ALTER TABLE users DROP COLUMN default_project_id;
