-- migrate:up
ALTER TABLE projects ADD CONSTRAINT projects_name_length CHECK (char_length(name) <= 200) NOT VALID;
ALTER TABLE projects VALIDATE CONSTRAINT projects_name_length; -- expect: validate-same-migration

-- migrate:down
ALTER TABLE projects DROP CONSTRAINT projects_name_length;
