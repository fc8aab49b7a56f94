-- migrate:up
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    public_id   uuid NOT NULL DEFAULT gen_random_uuid(),
    org_id      bigint NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email       citext NOT NULL,
    name        text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_format CHECK (email ~ '^[^@]+@[^@]+$')
);

CREATE UNIQUE INDEX users_public_id_key ON users (public_id);
CREATE INDEX users_org_id_idx ON users (org_id);
ALTER TABLE users ADD CONSTRAINT users_org_email_key UNIQUE (org_id, email);

-- migrate:down
DROP TABLE users;
