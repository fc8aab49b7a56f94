-- migrate:up
ALTER TABLE tasks
    ADD COLUMN archived boolean NOT NULL DEFAULT false,
    ADD COLUMN metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- migrate:down
ALTER TABLE tasks DROP COLUMN archived, DROP COLUMN metadata, DROP COLUMN created_at;
