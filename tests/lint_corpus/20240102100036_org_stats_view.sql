-- migrate:up
CREATE MATERIALIZED VIEW org_stats AS
SELECT o.id AS org_id, count(DISTINCT u.id) AS users, count(DISTINCT p.id) AS projects
FROM orgs o
LEFT JOIN users u ON u.org_id = o.id
LEFT JOIN projects p ON p.org_id = o.id
GROUP BY o.id
WITH NO DATA;

-- REFRESH … CONCURRENTLY needs a unique index; the view is new, so a plain one is fine.
CREATE UNIQUE INDEX org_stats_org_id_idx ON org_stats (org_id);

-- migrate:down
DROP MATERIALIZED VIEW org_stats;
