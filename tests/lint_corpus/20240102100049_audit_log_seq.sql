-- migrate:up
ALTER TABLE audit_log ADD COLUMN seq bigserial; -- expect: volatile-default

-- migrate:down
ALTER TABLE audit_log DROP COLUMN seq;
