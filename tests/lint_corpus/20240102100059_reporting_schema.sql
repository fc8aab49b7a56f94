-- migrate:up
CREATE SCHEMA IF NOT EXISTS reporting;
CREATE TABLE reporting.daily_signups (day date PRIMARY KEY, signups integer NOT NULL);
CREATE INDEX daily_signups_signups_idx ON reporting.daily_signups (signups);
INSERT INTO reporting.daily_signups (day, signups)
    SELECT created_at::date, count(*) FROM public.users GROUP BY 1;
GRANT USAGE ON SCHEMA reporting TO PUBLIC;

-- migrate:down
DROP SCHEMA reporting CASCADE;
