-- migrate:up
ALTER TABLE tasks ADD COLUMN points integer CHECK (points >= 0); -- expect: constraint-not-valid

-- migrate:down
ALTER TABLE tasks DROP COLUMN points;
