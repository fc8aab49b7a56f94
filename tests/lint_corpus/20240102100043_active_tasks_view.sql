-- migrate:up
CREATE OR REPLACE VIEW active_tasks AS
    SELECT t.id, t.title, t.status, p.title AS project
    FROM tasks t JOIN projects p ON p.id = t.project_id
    WHERE NOT t.archived;
COMMENT ON VIEW active_tasks IS 'Tasks that are not archived, with their project';
COMMENT ON COLUMN tasks.metadata IS 'Free-form client data';
REVOKE ALL ON active_tasks FROM PUBLIC;

-- migrate:down
DROP VIEW active_tasks;
