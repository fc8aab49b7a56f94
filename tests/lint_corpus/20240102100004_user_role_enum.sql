-- migrate:up
CREATE TYPE user_role AS ENUM ('member', 'admin');

-- A constant default is stored in the catalog (PostgreSQL 11+): no rewrite.
ALTER TABLE users ADD COLUMN role user_role NOT NULL DEFAULT 'member';

-- migrate:down
ALTER TABLE users DROP COLUMN role;
DROP TYPE user_role;
