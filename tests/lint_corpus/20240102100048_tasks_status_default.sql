-- migrate:up
ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'todo';
ALTER TABLE tasks ALTER COLUMN due_at DROP DEFAULT;

-- migrate:down
ALTER TABLE tasks ALTER COLUMN status DROP DEFAULT;
