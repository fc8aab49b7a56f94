-- migrate:up
ALTER TABLE orgs ADD CONSTRAINT orgs_name_key UNIQUE (name); -- expect: add-unique-without-index

-- migrate:down
ALTER TABLE orgs DROP CONSTRAINT orgs_name_key;
