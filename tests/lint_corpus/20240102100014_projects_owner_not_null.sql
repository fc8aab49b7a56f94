-- migrate:up
ALTER TABLE projects ALTER COLUMN owner_id SET NOT NULL; -- expect: set-not-null

-- migrate:down
ALTER TABLE projects ALTER COLUMN owner_id DROP NOT NULL;
