-- migrate:up
INSERT INTO audit_log (table_name, row_id, action) -- expect: backfill-in-migration
SELECT 'users', id, 'IMPORT' FROM users;

-- migrate:down
DELETE FROM audit_log WHERE action = 'IMPORT';
