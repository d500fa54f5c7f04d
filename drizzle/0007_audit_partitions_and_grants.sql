-- Custom migration (audit): column privileges that keep the sealing horizon honest, monthly
-- partitions created ahead, and the narrow maintenance rights retention needs.
--
-- The runtime role may insert only the descriptive columns of an audit row: `id`, `occurred_at` and
-- `txid` always take their defaults (identity, transaction time, writing transaction), so sv_app
-- can neither backdate an event nor place it inside an already sealed transaction range.
REVOKE INSERT ON audit.audit_logs FROM sv_app;
--> statement-breakpoint
GRANT INSERT (tenant_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, request_id, metadata, changes)
  ON audit.audit_logs TO sv_app;
--> statement-breakpoint
-- Monthly partitions `audit.audit_logs_yYYYYmMM` (UTC months) for the current month and
-- `months_ahead` more. SECURITY DEFINER so the runtime and maintenance roles can keep partitions
-- ahead without DDL rights of their own: the function only ever creates these partitions. A month
-- whose rows already sit in the default partition is skipped (creating it would fail); such rows
-- stay in the default partition, which retention never drops.
CREATE FUNCTION audit.ensure_partitions(months_ahead integer DEFAULT 3)
RETURNS SETOF text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
  month_start timestamp;
  partition_name text;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 36 THEN
    RAISE EXCEPTION 'months_ahead must be between 0 and 36, got %', months_ahead USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR i IN 0..months_ahead LOOP
    month_start := date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i);
    partition_name := 'audit_logs_y' || to_char(month_start, 'YYYY') || 'm' || to_char(month_start, 'MM');
    CONTINUE WHEN to_regclass('audit.' || partition_name) IS NOT NULL;
    IF EXISTS (
      SELECT 1 FROM audit.audit_logs_default
      WHERE occurred_at >= month_start AT TIME ZONE 'UTC'
        AND occurred_at < (month_start + interval '1 month') AT TIME ZONE 'UTC'
    ) THEN
      RAISE WARNING 'audit: rows of % are in the default partition; % not created', to_char(month_start, 'YYYY-MM'), partition_name;
      CONTINUE;
    END IF;
    BEGIN
      EXECUTE format(
        'CREATE TABLE audit.%I PARTITION OF audit.audit_logs FOR VALUES FROM (%L) TO (%L)',
        partition_name, month_start AT TIME ZONE 'UTC', (month_start + interval '1 month') AT TIME ZONE 'UTC'
      );
    EXCEPTION WHEN duplicate_table THEN
      CONTINUE; -- another instance created it concurrently
    END;
    -- Default privileges gave sv_app SELECT and INSERT on the new table; reading a partition
    -- directly would skip the parent's row-level security.
    EXECUTE format('REVOKE ALL ON audit.%I FROM sv_app', partition_name);
    RETURN NEXT partition_name;
  END LOOP;
END $$;
--> statement-breakpoint
-- Detaches and drops the monthly partitions whose whole range ends at or before `cutoff`. Never
-- touches the default partition or a partition straddling the cutoff: no row is deleted one by one.
CREATE FUNCTION audit.drop_partitions_before(cutoff timestamptz)
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET timezone = 'UTC'
AS $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT c.relname AS name,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS low,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS high
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit.audit_logs'::regclass
      AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
    ORDER BY 2
  LOOP
    CONTINUE WHEN r.high IS NULL OR r.high > cutoff;
    EXECUTE format('ALTER TABLE audit.audit_logs DETACH PARTITION audit.%I', r.name);
    EXECUTE format('DROP TABLE audit.%I', r.name);
    partition_name := r.name;
    range_start := r.low;
    range_end := r.high;
    RETURN NEXT;
  END LOOP;
END $$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION audit.ensure_partitions(integer) FROM PUBLIC;
--> statement-breakpoint
REVOKE ALL ON FUNCTION audit.drop_partitions_before(timestamptz) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION audit.ensure_partitions(integer) TO sv_app, sv_maintenance;
--> statement-breakpoint
-- Retention: only the maintenance role (and the owner) may drop partitions; it records its own
-- `audit.retention_applied` event, so it needs the same narrow INSERT the runtime role has.
GRANT EXECUTE ON FUNCTION audit.drop_partitions_before(timestamptz) TO sv_maintenance;
--> statement-breakpoint
GRANT USAGE ON SCHEMA audit TO sv_maintenance;
--> statement-breakpoint
GRANT SELECT ON audit.audit_logs, audit.audit_seals TO sv_maintenance;
--> statement-breakpoint
GRANT INSERT (tenant_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, request_id, metadata, changes)
  ON audit.audit_logs TO sv_maintenance;
--> statement-breakpoint
GRANT USAGE ON SEQUENCE audit.audit_logs_id_seq TO sv_maintenance;
--> statement-breakpoint
SELECT audit.ensure_partitions(3);
