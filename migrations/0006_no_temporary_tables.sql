-- Least privilege, continued: PostgreSQL lets every role create temporary tables in every
-- database (TEMPORARY is granted to PUBLIC), which is storage outside the service's tables.
-- The service and the relay need none. Takes the database's owner; another migrating role
-- gets a warning and the privilege stays.
DO $$
BEGIN
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$;
