-- Append-only tables: the audit trail and the consent history refuse UPDATE, DELETE and TRUNCATE for every role
-- (a superuser can still drop the trigger; the production role must not be one, see docs/decisions).
CREATE OR REPLACE FUNCTION nexus_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION nexus_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION nexus_refuse_change();
--> statement-breakpoint
CREATE TRIGGER consent_history_append_only BEFORE UPDATE OR DELETE ON consent_history
  FOR EACH ROW EXECUTE FUNCTION nexus_refuse_change();
--> statement-breakpoint
CREATE TRIGGER consent_history_no_truncate BEFORE TRUNCATE ON consent_history
  FOR EACH STATEMENT EXECUTE FUNCTION nexus_refuse_change();
