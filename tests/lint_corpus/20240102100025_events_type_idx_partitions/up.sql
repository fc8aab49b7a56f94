-- seedkit: transaction=false
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_2024_01_type_idx ON events_2024_01 (event_type);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_2024_02_type_idx ON events_2024_02 (event_type);
ALTER INDEX events_type_idx ATTACH PARTITION events_2024_01_type_idx;
ALTER INDEX events_type_idx ATTACH PARTITION events_2024_02_type_idx;
