-- Audit group commit and the append-only door (issues 15 and 11.6). Hand-written (drizzle-kit generate --custom).
-- See docs/decisions/2026-11-30-audit-group-commit-and-checkpoints.md.
--
-- 1. nexus_audit_append_many(events jsonb): appends a batch of events — a JSON array of objects with the keys
--    actorId, actorRole, actorName, action, resourceType, resourceId, patientId, outcome, reason, purpose, requestId,
--    ip, userAgent — in array order, under one take of the chain lock, in the caller's one statement (so one round
--    trip and one commit for the whole batch), and returns their ids in the same order. Each row is stamped and
--    hashed exactly as nexus_audit_append() (drizzle/0006_audit_append.sql) did, which app/audit/chain.server.ts
--    verifies. app/audit/audit.server.ts gathers the events of concurrent requests into one such call and answers
--    none of them before it returned, i.e. before their commit.
CREATE OR REPLACE FUNCTION nexus_audit_append_many(p_events jsonb) RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_ids bigint[] := ARRAY[]::bigint[];
  v_id bigint;
  v_prev text;
  v_last_at timestamptz;
  v_at timestamptz;
  v_json text;
  v_hash text;
  e jsonb;
BEGIN
  IF jsonb_typeof(p_events) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION 'nexus_audit_append_many expects a JSON array' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM pg_advisory_xact_lock(7202611231);
  SELECT ev.hash, ev.at INTO v_prev, v_last_at FROM audit_events ev ORDER BY ev.id DESC LIMIT 1;
  IF v_prev IS NULL THEN
    SELECT a.last_hash, a.last_at INTO v_prev, v_last_at FROM audit_archives a ORDER BY a.last_id DESC LIMIT 1;
  END IF;
  v_prev := coalesce(v_prev, repeat('0', 64));
  FOR e IN SELECT value FROM jsonb_array_elements(p_events) LOOP
    v_at := greatest(date_trunc('milliseconds', clock_timestamp()), date_trunc('milliseconds', v_last_at));
    v_id := nextval(pg_get_serial_sequence('audit_events', 'id'));
    v_json := '{"action":' || nexus_json(e->>'action')
      || ',"actorId":' || nexus_json((e->>'actorId')::uuid::text)
      || ',"actorName":' || nexus_json(e->>'actorName')
      || ',"actorRole":' || nexus_json(e->>'actorRole')
      || ',"at":' || nexus_json(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
      || ',"id":' || v_id::text
      || ',"ip":' || nexus_json(e->>'ip')
      || ',"outcome":' || nexus_json((e->>'outcome')::audit_outcome::text)
      || ',"patientId":' || nexus_json((e->>'patientId')::uuid::text)
      || ',"purpose":' || nexus_json(e->>'purpose')
      || ',"reason":' || nexus_json(e->>'reason')
      || ',"requestId":' || nexus_json(e->>'requestId')
      || ',"resourceId":' || nexus_json(e->>'resourceId')
      || ',"resourceType":' || nexus_json(e->>'resourceType')
      || ',"userAgent":' || nexus_json(e->>'userAgent')
      || '}';
    v_hash := encode(sha256(convert_to(v_prev || E'\n' || v_json, 'UTF8')), 'hex');
    INSERT INTO audit_events (id, at, actor_id, actor_role, actor_name, action, resource_type, resource_id, patient_id,
                              outcome, reason, purpose, request_id, ip, user_agent, prev_hash, hash)
    VALUES (v_id, v_at, (e->>'actorId')::uuid, e->>'actorRole', e->>'actorName', e->>'action', e->>'resourceType',
            e->>'resourceId', (e->>'patientId')::uuid, (e->>'outcome')::audit_outcome, e->>'reason', e->>'purpose',
            e->>'requestId', e->>'ip', e->>'userAgent', v_prev, v_hash);
    v_ids := v_ids || v_id;
    v_prev := v_hash;
    v_last_at := v_at;
  END LOOP;
  RETURN v_ids;
END;
$$;
--> statement-breakpoint

-- 2. The single-event form stays (scripts and older callers) and becomes a batch of one, so there is one hashing code.
CREATE OR REPLACE FUNCTION nexus_audit_append(
  p_actor_id uuid,
  p_actor_role text,
  p_actor_name text,
  p_action text,
  p_resource_type text,
  p_resource_id text,
  p_patient_id uuid,
  p_outcome audit_outcome,
  p_reason text,
  p_purpose text,
  p_request_id text,
  p_ip text,
  p_user_agent text
) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT (nexus_audit_append_many(jsonb_build_array(jsonb_build_object(
    'actorId', p_actor_id, 'actorRole', p_actor_role, 'actorName', p_actor_name, 'action', p_action,
    'resourceType', p_resource_type, 'resourceId', p_resource_id, 'patientId', p_patient_id, 'outcome', p_outcome,
    'reason', p_reason, 'purpose', p_purpose, 'requestId', p_request_id, 'ip', p_ip, 'userAgent', p_user_agent))))[1]
$$;
--> statement-breakpoint

-- 3. The production role appends only through these functions (owned by the migration role, SECURITY DEFINER): no
--    direct INSERT, so it cannot write a back-dated or forged row. Same for the archiver, which records its own run.
REVOKE ALL ON FUNCTION nexus_audit_append_many(jsonb) FROM PUBLIC;
--> statement-breakpoint
REVOKE ALL ON FUNCTION nexus_audit_append(uuid, text, text, text, text, text, uuid, audit_outcome, text, text, text, text, text) FROM PUBLIC;
--> statement-breakpoint
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['nexus_app', 'nexus_archiver'] LOOP
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('REVOKE INSERT ON audit_events FROM %I', r);
      EXECUTE format('GRANT EXECUTE ON FUNCTION nexus_audit_append_many(jsonb) TO %I', r);
      EXECUTE format('GRANT EXECUTE ON FUNCTION nexus_audit_append(uuid, text, text, text, text, text, uuid, audit_outcome, text, text, text, text, text) TO %I', r);
    END IF;
  END LOOP;
END;
$$;
