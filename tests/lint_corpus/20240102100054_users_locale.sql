-- migrate:up
CREATE FUNCTION default_locale() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT 'en_US' $$;

-- An IMMUTABLE function gives a constant default: no rewrite.
ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT default_locale();

-- migrate:down
ALTER TABLE users DROP COLUMN locale;
DROP FUNCTION default_locale();
