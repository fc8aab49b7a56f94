-- migrate:up
CREATE TABLE projects (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    slug        text NOT NULL,
    name        text NOT NULL,
    budget      numeric(10, 2),
    status      text NOT NULL DEFAULT 'active',
    legacy_code text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX projects_org_id_idx ON projects (org_id);
ALTER TABLE projects ADD CONSTRAINT projects_status_check
    CHECK (status IN ('active', 'archived'));

-- migrate:down
DROP TABLE projects;
