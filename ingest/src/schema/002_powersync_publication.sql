-- PowerSync replicates plain tables through a publication named exactly `powersync`, listing
-- tables explicitly (managed PostgreSQL forbids FOR ALL TABLES to non-superusers).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'powersync') THEN
        CREATE PUBLICATION powersync FOR TABLE device_latest;
    END IF;
END
$$;
