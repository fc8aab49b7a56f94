-- migrate:up
-- numeric(10,2) -> numeric(14,2) keeps the scale: no rewrite.
ALTER TABLE projects ALTER COLUMN budget TYPE numeric(14, 2);

-- migrate:down
ALTER TABLE projects ALTER COLUMN budget TYPE numeric(10, 2);
