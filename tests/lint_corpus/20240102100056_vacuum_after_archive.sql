-- migrate:up
VACUUM (ANALYZE) tasks; -- expect: non-transactional-statement

-- migrate:down
SELECT 1;
