-- migrate:up
ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'owner' AFTER 'admin';

-- migrate:down
-- enum values cannot be removed
