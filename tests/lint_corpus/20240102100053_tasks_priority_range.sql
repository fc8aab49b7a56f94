-- migrate:up
ALTER TABLE tasks ADD CONSTRAINT tasks_priority_range CHECK (priority BETWEEN 0 AND 5); -- expect: constraint-not-valid

-- migrate:down
ALTER TABLE tasks DROP CONSTRAINT tasks_priority_range;
