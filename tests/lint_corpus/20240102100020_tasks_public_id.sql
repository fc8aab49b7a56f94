-- migrate:up
ALTER TABLE tasks ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid(); -- expect: volatile-default

-- migrate:down
ALTER TABLE tasks DROP COLUMN public_id;
