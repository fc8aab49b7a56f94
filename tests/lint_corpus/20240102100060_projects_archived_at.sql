-- migrate:up
ALTER TABLE projects
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN archived_by bigint,
    ALTER COLUMN budget SET NOT NULL, -- expect: set-not-null
    DROP COLUMN legacy_code; -- expect: drop-column

-- migrate:down
ALTER TABLE projects DROP COLUMN archived_at, DROP COLUMN archived_by, ALTER COLUMN budget DROP NOT NULL,
    ADD COLUMN legacy_code text;
