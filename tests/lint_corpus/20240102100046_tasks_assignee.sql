-- migrate:up
ALTER TABLE tasks ADD COLUMN assignee_id bigint REFERENCES users (id); -- expect: constraint-not-valid

-- migrate:down
ALTER TABLE tasks DROP COLUMN assignee_id;
