-- The application can run as nexus_app with NEXUS_MIGRATE=0 (migrations applied beforehand by the owner with
-- `npm run db:migrate`); at start-up it then checks that none is pending, which needs to read drizzle's own table.
-- Hand-written (drizzle-kit generate --custom). Conditional like 0004: the role may not exist here.
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'nexus_app') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA drizzle TO nexus_app';
    EXECUTE 'GRANT SELECT ON drizzle.__drizzle_migrations TO nexus_app';
  END IF;
END;
$$;
