-- migrate:up
-- seedkit:nolint drop-column the app stopped reading legacy_notes in release 2024.03 (PR #412)
ALTER TABLE tasks DROP COLUMN legacy_notes; -- expect-suppressed: drop-column

-- migrate:down
ALTER TABLE tasks ADD COLUMN legacy_notes text;
