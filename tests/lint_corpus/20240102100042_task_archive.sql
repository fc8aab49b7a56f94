-- migrate:up
CREATE TABLE task_archive (LIKE tasks INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
-- Filling a table created in this migration is not a backfill of a live table...
INSERT INTO task_archive SELECT * FROM tasks WHERE archived;
-- ...but deleting from the live one is.
DELETE FROM tasks WHERE archived; -- expect: backfill-in-migration

-- migrate:down
DROP TABLE task_archive;
