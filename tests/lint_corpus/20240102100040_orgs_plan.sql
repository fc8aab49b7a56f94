-- migrate:up
ALTER TABLE orgs ADD COLUMN plan text NOT NULL; -- expect: add-required-column

-- migrate:down
ALTER TABLE orgs DROP COLUMN plan;
