-- migrate:up
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name  text NOT NULL,
    row_id      bigint NOT NULL,
    action      text NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    diff        jsonb
);

CREATE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    INSERT INTO audit_log (table_name, row_id, action, diff)
    VALUES (TG_TABLE_NAME, NEW.id, TG_OP, to_jsonb(NEW));
    RETURN NEW;
END
$fn$;

CREATE TRIGGER projects_audit AFTER INSERT OR UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION audit_row();

-- migrate:down
DROP TRIGGER projects_audit ON projects;
DROP FUNCTION audit_row();
DROP TABLE audit_log;
