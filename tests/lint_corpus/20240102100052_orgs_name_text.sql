-- migrate:up
-- varchar(200) -> text is binary coercible: PostgreSQL changes the catalog only.
ALTER TABLE orgs ALTER COLUMN name TYPE text;

-- migrate:down
ALTER TABLE orgs ALTER COLUMN name TYPE varchar(200);
