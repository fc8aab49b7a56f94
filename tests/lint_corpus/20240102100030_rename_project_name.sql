-- migrate:up
ALTER TABLE projects RENAME COLUMN name TO title; -- expect: rename-column

-- migrate:down
ALTER TABLE projects RENAME COLUMN title TO name;
