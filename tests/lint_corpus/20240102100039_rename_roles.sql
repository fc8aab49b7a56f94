-- migrate:up
ALTER TABLE roles RENAME TO member_roles; -- expect: rename-table

-- migrate:down
ALTER TABLE member_roles RENAME TO roles;
