-- migrate:up
UPDATE tasks SET archived = true WHERE status = 'done'; -- expect: backfill-in-migration

-- migrate:down
UPDATE tasks SET archived = false;
