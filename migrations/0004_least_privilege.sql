-- Least privilege. The migrations run as the owner of these tables (postgres.migration_url);
-- the service runs as a login role that is a member of fraud_service, and the outbox relay
-- as one that is a member of fraud_outbox_relay. Neither owns anything, so neither can DROP,
-- TRUNCATE or ALTER a table; neither may CREATE in the schema; the service may not DELETE
-- or UPDATE anything but its offsets. The grants list each table and what the code does to
-- it: a new table or statement must come with its grant in the same migration.
--
-- The group roles are cluster-wide; creating them takes CREATEROLE once. Where the migrating
-- role lacks it, a DBA runs the two CREATE ROLE statements below first.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fraud_service') THEN
    CREATE ROLE fraud_service NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fraud_outbox_relay') THEN
    CREATE ROLE fraud_outbox_relay NOLOGIN;
  END IF;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the roles fraud_service and fraud_outbox_relay do not exist and this role may not create them'
      USING HINT = 'Have a DBA run: CREATE ROLE fraud_service NOLOGIN; CREATE ROLE fraud_outbox_relay NOLOGIN; then migrate again.';
  WHEN unique_violation OR duplicate_object THEN
    NULL;  -- a migration of another database created it at the same moment
END $$;

-- Before PostgreSQL 15 everyone may create tables in schema public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO fraud_service, fraud_outbox_relay;

-- The batch transaction (dedup/batch_store.cpp). RETURNING needs SELECT.
GRANT SELECT, INSERT ON processed_events, transactions, first_seen_pairs, fraud_alerts, rejected_events
  TO fraud_service;
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO fraud_service;   -- claim bumps the epoch
GRANT INSERT ON outbox TO fraud_service;
GRANT USAGE ON SEQUENCE fraud_alerts_alert_id_seq, rejected_events_rejected_id_seq, outbox_outbox_id_seq
  TO fraud_service;
GRANT SELECT ON fraud_labels TO fraud_service;                       -- rules backtest

-- The relay publishes the outbox and marks (or deletes) what the broker acknowledged.
GRANT SELECT, UPDATE (published_at), DELETE ON outbox TO fraud_outbox_relay;
