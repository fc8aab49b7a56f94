-- seedkit: transaction=false
DROP INDEX CONCURRENTLY IF EXISTS events_2024_01_type_idx;
