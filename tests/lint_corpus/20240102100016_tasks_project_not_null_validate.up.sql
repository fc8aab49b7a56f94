ALTER TABLE tasks VALIDATE CONSTRAINT tasks_project_id_not_null;
