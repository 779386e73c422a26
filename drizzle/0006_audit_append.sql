-- The audit writer in one round trip: nexus_audit_append() takes the chain lock, reads the head of the chain (the
-- last row, or the last archive seal), stamps the time (never earlier than the previous event's, to the
-- millisecond), takes the next id, and inserts the row with its hash — all in the caller's single statement, so an
-- autocommitted `select nexus_audit_append(…)` costs one round trip and one commit.
--
-- The hash is exactly the one app/audit/chain.server.ts defines and verifies: SHA-256 over prev_hash, "\n" and the
-- row's canonical JSON (keys sorted; strings escaped as JSON.stringify does, which to_json(text) matches for every
-- string PostgreSQL can store; the time as ISO 8601 UTC with milliseconds; null as null). verifyChain() re-computes
-- it in JavaScript, and app/audit/audit.server.test.ts writes awkward strings through this function to prove both
-- sides agree.
CREATE OR REPLACE FUNCTION nexus_json(value text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce(to_json(value)::text, 'null') $$;
--> statement-breakpoint
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
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  v_id bigint;
  v_prev text;
  v_last_at timestamptz;
  v_at timestamptz;
  v_json text;
BEGIN
  PERFORM pg_advisory_xact_lock(7202611231);
  SELECT e.hash, e.at INTO v_prev, v_last_at FROM audit_events e ORDER BY e.id DESC LIMIT 1;
  IF v_prev IS NULL THEN
    SELECT a.last_hash, a.last_at INTO v_prev, v_last_at FROM audit_archives a ORDER BY a.last_id DESC LIMIT 1;
  END IF;
  v_prev := coalesce(v_prev, repeat('0', 64));
  v_at := greatest(date_trunc('milliseconds', clock_timestamp()), date_trunc('milliseconds', v_last_at));
  v_id := nextval(pg_get_serial_sequence('audit_events', 'id'));
  v_json := '{"action":' || nexus_json(p_action)
    || ',"actorId":' || nexus_json(p_actor_id::text)
    || ',"actorName":' || nexus_json(p_actor_name)
    || ',"actorRole":' || nexus_json(p_actor_role)
    || ',"at":' || nexus_json(to_char(v_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    || ',"id":' || v_id::text
    || ',"ip":' || nexus_json(p_ip)
    || ',"outcome":' || nexus_json(p_outcome::text)
    || ',"patientId":' || nexus_json(p_patient_id::text)
    || ',"purpose":' || nexus_json(p_purpose)
    || ',"reason":' || nexus_json(p_reason)
    || ',"requestId":' || nexus_json(p_request_id)
    || ',"resourceId":' || nexus_json(p_resource_id)
    || ',"resourceType":' || nexus_json(p_resource_type)
    || ',"userAgent":' || nexus_json(p_user_agent)
    || '}';
  INSERT INTO audit_events (id, at, actor_id, actor_role, actor_name, action, resource_type, resource_id, patient_id,
                            outcome, reason, purpose, request_id, ip, user_agent, prev_hash, hash)
  VALUES (v_id, v_at, p_actor_id, p_actor_role, p_actor_name, p_action, p_resource_type, p_resource_id, p_patient_id,
          p_outcome, p_reason, p_purpose, p_request_id, p_ip, p_user_agent, v_prev,
          encode(sha256(convert_to(v_prev || E'\n' || v_json, 'UTF8')), 'hex'));
  RETURN v_id;
END;
$$;
