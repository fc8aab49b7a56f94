-- migrate:up
CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    org_id       bigint NOT NULL,
    user_id      bigint,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL DEFAULT '{}',
    occurred_at  timestamptz NOT NULL,
    PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

CREATE TABLE events_2024_01 PARTITION OF events
    FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE events_2024_02 PARTITION OF events
    FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');

CREATE INDEX events_org_occurred_idx ON events (org_id, occurred_at);

-- migrate:down
DROP TABLE events;
