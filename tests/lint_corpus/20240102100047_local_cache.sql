-- migrate:up
-- seedkit: dialect=sqlite
CREATE TABLE cache (key TEXT PRIMARY KEY, value BLOB, expires INTEGER) WITHOUT ROWID;
CREATE INDEX cache_expires ON cache (expires);

-- migrate:down
DROP TABLE cache;
