-- migrate:up
CREATE TABLE orgs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        citext NOT NULL UNIQUE,
    name        varchar(200) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A new table is empty: no CONCURRENTLY needed.
CREATE INDEX orgs_name_idx ON orgs (name);
CREATE INDEX orgs_name_trgm_idx ON orgs USING gin (name gin_trgm_ops);

-- migrate:down
DROP TABLE orgs;
