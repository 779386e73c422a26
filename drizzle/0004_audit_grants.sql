-- Audit trail, issue 6: archive seals, the archiver's one way to prune, production grants, search indexes.
-- Hand-written (drizzle-kit generate --custom): roles, grants, functions and triggers are beyond the schema DSL.
-- See docs/decisions/2026-11-23-audit-retention-and-grants.md.

-- 1. Seals of archived periods: append-only like the trail itself.
CREATE TABLE IF NOT EXISTS "audit_archives" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"period_end" timestamp with time zone NOT NULL,
	"first_id" bigint NOT NULL,
	"last_id" bigint NOT NULL,
	"count" bigint NOT NULL,
	"first_at" timestamp with time zone,
	"last_at" timestamp with time zone,
	"first_prev_hash" text NOT NULL,
	"last_hash" text NOT NULL,
	"file_name" text NOT NULL,
	"file_sha256" text NOT NULL,
	CONSTRAINT "audit_archives_range" CHECK ("first_id" <= "last_id" AND "count" > 0)
);
--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "audit_archives_last_id_key" ON "audit_archives" USING btree ("last_id");
--> statement-breakpoint
CREATE TRIGGER audit_archives_append_only BEFORE UPDATE OR DELETE ON audit_archives
  FOR EACH ROW EXECUTE FUNCTION nexus_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives
  FOR EACH STATEMENT EXECUTE FUNCTION nexus_refuse_change();
--> statement-breakpoint

-- 2. The trail's guard: UPDATE is always refused; DELETE only for rows covered by a sealed archive, and only inside
--    nexus_audit_seal_and_prune() (which sets nexus.audit_prune_upto for its own transaction). A session could set
--    that variable itself, but it still could delete nothing that is not sealed, and the production role has no
--    DELETE privilege at all (section 4).
CREATE OR REPLACE FUNCTION nexus_audit_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND OLD.id <= coalesce(nullif(current_setting('nexus.audit_prune_upto', true), '')::bigint, 0)
     AND EXISTS (SELECT 1 FROM audit_archives WHERE last_id >= OLD.id) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'table % is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events;
--> statement-breakpoint
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION nexus_audit_guard();
--> statement-breakpoint

-- 3. Seal a period and prune it, atomically, under the writers' chain lock. The archive file was written and
--    verified by `npm run audit:archive` before this call; the function re-checks what the database can: the
--    period starts right after the previous seal, holds p_count rows, links to the previous seal's last hash and
--    ends on p_last_hash. Owned by the migration role (SECURITY DEFINER); EXECUTE is not granted to the app role.
CREATE OR REPLACE FUNCTION nexus_audit_seal_and_prune(
  p_last_id bigint,
  p_count bigint,
  p_first_prev_hash text,
  p_last_hash text,
  p_period_end timestamptz,
  p_file_name text,
  p_file_sha256 text,
  p_created_by text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  prev_last_id bigint;
  prev_hash text;
  v_count bigint;
  v_first_id bigint;
  v_first_prev text;
  v_first_at timestamptz;
  v_last_hash text;
  v_last_at timestamptz;
  v_archive bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(7202611231);
  SELECT last_id, last_hash INTO prev_last_id, prev_hash FROM audit_archives ORDER BY last_id DESC LIMIT 1;
  prev_last_id := coalesce(prev_last_id, 0);
  prev_hash := coalesce(prev_hash, repeat('0', 64));
  IF p_last_id <= prev_last_id THEN
    RAISE EXCEPTION 'audit archive: events up to #% are already archived', prev_last_id;
  END IF;
  SELECT count(*) INTO v_count FROM audit_events WHERE id > prev_last_id AND id <= p_last_id;
  IF v_count <> p_count OR v_count = 0 THEN
    RAISE EXCEPTION 'audit archive: % events in the period, the file holds %', v_count, p_count;
  END IF;
  SELECT id, prev_hash, at INTO v_first_id, v_first_prev, v_first_at
    FROM audit_events WHERE id > prev_last_id ORDER BY id LIMIT 1;
  IF v_first_prev <> prev_hash OR v_first_prev <> p_first_prev_hash THEN
    RAISE EXCEPTION 'audit archive: event #% does not link to the previous seal', v_first_id;
  END IF;
  SELECT hash, at INTO v_last_hash, v_last_at FROM audit_events WHERE id = p_last_id;
  IF v_last_hash IS DISTINCT FROM p_last_hash THEN
    RAISE EXCEPTION 'audit archive: event #% does not end on the sealed hash', p_last_id;
  END IF;
  INSERT INTO audit_archives (created_by, period_end, first_id, last_id, count, first_at, last_at,
                              first_prev_hash, last_hash, file_name, file_sha256)
  VALUES (p_created_by, p_period_end, v_first_id, p_last_id, v_count, v_first_at, v_last_at,
          v_first_prev, p_last_hash, p_file_name, p_file_sha256)
  RETURNING id INTO v_archive;
  PERFORM set_config('nexus.audit_prune_upto', p_last_id::text, true);
  DELETE FROM audit_events WHERE id > prev_last_id AND id <= p_last_id;
  PERFORM set_config('nexus.audit_prune_upto', '', true);
  RETURN v_archive;
END;
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION nexus_audit_seal_and_prune(bigint, bigint, text, text, timestamptz, text, text, text) FROM PUBLIC;
--> statement-breakpoint

-- 4. Production roles, created when missing and when the migrating role may (PGlite and managed PostgreSQL may
--    refuse: the notice says so and the grants are then an operator's step, see the README).
--    nexus_app: what the application's login role should be a member of. Reads and writes the tables, but only
--    SELECT and INSERT on the append-only ones: no UPDATE, DELETE or TRUNCATE on the audit trail, its seals or
--    the consent history. nexus_archiver: may run the seal-and-prune function (npm run audit:archive).
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['nexus_app', 'nexus_archiver'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN insufficient_privilege OR duplicate_object OR unique_violation THEN
        RAISE NOTICE 'role % not created here (%): create it and apply the grants by hand', r, SQLERRM;
      END;
    END IF;
  END LOOP;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'nexus_app') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO nexus_app';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO nexus_app';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO nexus_app';
    EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_archives, consent_history FROM nexus_app';
    EXECUTE 'REVOKE INSERT ON audit_archives FROM nexus_app';
    -- Tables created by later migrations (run by this same role) get the ordinary grants; a new append-only table
    -- must revoke UPDATE, DELETE and TRUNCATE in its own migration.
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO nexus_app';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO nexus_app';
  END IF;
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'nexus_archiver') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO nexus_archiver';
    EXECUTE 'GRANT SELECT ON audit_events, audit_archives TO nexus_archiver';
    EXECUTE 'GRANT INSERT ON audit_events TO nexus_archiver';
    EXECUTE 'GRANT USAGE, SELECT ON SEQUENCE audit_events_id_seq TO nexus_archiver';
    EXECUTE 'GRANT EXECUTE ON FUNCTION nexus_audit_seal_and_prune(bigint, bigint, text, text, timestamptz, text, text, text) TO nexus_archiver';
  END IF;
END;
$$;
--> statement-breakpoint

-- 5. Search: the request-id lookup (completeness checks, support), the date-to-id lookup, the chain-check lookup.
CREATE INDEX IF NOT EXISTS "audit_events_request_idx" ON "audit_events" USING btree ("request_id");
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "audit_events_chain_check_idx" ON "audit_events" USING btree ("id") WHERE "resource_type" = 'audit_chain';
