-- migrate:up
CREATE TABLE tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id    bigint,
    title         text NOT NULL,
    status        text NOT NULL DEFAULT 'todo',
    priority      integer NOT NULL DEFAULT 0,
    due_at        timestamptz,
    legacy_notes  text
);
-- tasks is new: adding its constraints in full is instant.
ALTER TABLE tasks ADD CONSTRAINT tasks_project_fk FOREIGN KEY (project_id) REFERENCES projects (id);
CREATE INDEX tasks_project_id_idx ON tasks (project_id);

ALTER TABLE projects ADD COLUMN owner_id bigint;
ALTER TABLE projects ADD CONSTRAINT projects_owner_fk FOREIGN KEY (owner_id) REFERENCES users (id); -- expect: constraint-not-valid

-- migrate:down
ALTER TABLE projects DROP COLUMN owner_id;
DROP TABLE tasks;
