-- Fix of nexus_audit_seal_and_prune() from 0004_audit_grants.sql: its local variable `prev_hash` shadowed the
-- audit_events column of the same name ("column reference is ambiguous" at the first archive). Same logic, local
-- variables prefixed v_, columns qualified. Grants on the function are kept by CREATE OR REPLACE.
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
  v_prev_last_id bigint;
  v_prev_hash text;
  v_count bigint;
  v_first_id bigint;
  v_first_prev text;
  v_first_at timestamptz;
  v_last_hash text;
  v_last_at timestamptz;
  v_archive bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(7202611231);
  SELECT a.last_id, a.last_hash INTO v_prev_last_id, v_prev_hash FROM audit_archives a ORDER BY a.last_id DESC LIMIT 1;
  v_prev_last_id := coalesce(v_prev_last_id, 0);
  v_prev_hash := coalesce(v_prev_hash, repeat('0', 64));
  IF p_last_id <= v_prev_last_id THEN
    RAISE EXCEPTION 'audit archive: events up to #% are already archived', v_prev_last_id;
  END IF;
  SELECT count(*) INTO v_count FROM audit_events e WHERE e.id > v_prev_last_id AND e.id <= p_last_id;
  IF v_count <> p_count OR v_count = 0 THEN
    RAISE EXCEPTION 'audit archive: % events in the period, the file holds %', v_count, p_count;
  END IF;
  SELECT e.id, e.prev_hash, e.at INTO v_first_id, v_first_prev, v_first_at
    FROM audit_events e WHERE e.id > v_prev_last_id ORDER BY e.id LIMIT 1;
  IF v_first_prev <> v_prev_hash OR v_first_prev <> p_first_prev_hash THEN
    RAISE EXCEPTION 'audit archive: event #% does not link to the previous seal', v_first_id;
  END IF;
  SELECT e.hash, e.at INTO v_last_hash, v_last_at FROM audit_events e WHERE e.id = p_last_id;
  IF v_last_hash IS DISTINCT FROM p_last_hash THEN
    RAISE EXCEPTION 'audit archive: event #% does not end on the sealed hash', p_last_id;
  END IF;
  INSERT INTO audit_archives (created_by, period_end, first_id, last_id, count, first_at, last_at,
                              first_prev_hash, last_hash, file_name, file_sha256)
  VALUES (p_created_by, p_period_end, v_first_id, p_last_id, v_count, v_first_at, v_last_at,
          v_first_prev, p_last_hash, p_file_name, p_file_sha256)
  RETURNING id INTO v_archive;
  PERFORM set_config('nexus.audit_prune_upto', p_last_id::text, true);
  DELETE FROM audit_events e WHERE e.id > v_prev_last_id AND e.id <= p_last_id;
  PERFORM set_config('nexus.audit_prune_upto', '', true);
  RETURN v_archive;
END;
$$;
