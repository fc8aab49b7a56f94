-- migrate:up
DO $$
DECLARE
    moved integer;
BEGIN
    LOOP
        UPDATE tasks SET status = 'todo' -- expect: backfill-in-migration
        WHERE id IN (SELECT id FROM tasks WHERE status = 'new' LIMIT 1000);
        GET DIAGNOSTICS moved = ROW_COUNT;
        EXIT WHEN moved = 0;
    END LOOP;
END
$$;

-- migrate:down
SELECT 1;
