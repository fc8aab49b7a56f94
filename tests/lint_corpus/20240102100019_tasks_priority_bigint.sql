-- migrate:up
ALTER TABLE tasks ALTER COLUMN priority TYPE bigint; -- expect: column-type-change

-- migrate:down
ALTER TABLE tasks ALTER COLUMN priority TYPE integer;
