-- migrate:up
ALTER TABLE users ADD COLUMN search tsvector -- expect: volatile-default
    GENERATED ALWAYS AS (to_tsvector('simple', coalesce(name, '') || ' ' || email::text)) STORED;

-- migrate:down
ALTER TABLE users DROP COLUMN search;
