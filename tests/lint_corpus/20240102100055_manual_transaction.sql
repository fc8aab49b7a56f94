-- migrate:up
BEGIN; -- expect: transaction-control
ALTER TABLE tasks ADD COLUMN estimate interval;
COMMIT; -- expect: transaction-control

-- migrate:down
ALTER TABLE tasks DROP COLUMN estimate;
