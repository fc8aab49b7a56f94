-- migrate:up
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- runs on every update; UPDATE statements in here are not migration-time backfills
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- migrate:down
DROP TRIGGER users_set_updated_at ON users;
ALTER TABLE users DROP COLUMN updated_at;
DROP FUNCTION set_updated_at();
