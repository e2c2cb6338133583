-- The SECURITY DEFINER functions run with their owner's rights, and their owner was whoever
-- migrated: in the quickstart, and wherever a DBA migrates with their own login, a superuser
-- (issue 29). A flaw in one function would then hand its caller everything. Now each runs as
-- a role made for it, which cannot log in and may do only what its functions do:
--
-- - fraud_desk_owner owns the analysts' functions (cases, lists, suppressions, proposals,
--   the audit): it reads and writes the desk's tables and nothing else. It cannot read the
--   history's event bodies, delete, truncate, or change a table's shape; the audit's
--   append-only triggers refuse it as they refuse everyone.
-- - fraud_stall_release owns fraud_release_stalled_owner() (migrations/0008), which must see
--   other sessions' transactions and end a frozen one: pg_read_all_stats and
--   pg_signal_backend, and consumer_offsets to read. Granting those predefined roles takes a
--   superuser; a migrating role that is not one leaves the function as it is (owned by that
--   role, which is then no superuser either) and says so.
--
-- Whoever migrates becomes a member of fraud_desk_owner, so later files can replace its
-- functions. A later SECURITY DEFINER function is given to one of these roles in its own file.
-- Catalog changes only: no table is locked beyond a moment.
SET LOCAL lock_timeout = '5s';

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fraud_desk_owner') THEN
    CREATE ROLE fraud_desk_owner NOLOGIN;
  END IF;
  IF NOT pg_has_role(current_user, 'fraud_desk_owner', 'MEMBER') THEN
    EXECUTE format('GRANT fraud_desk_owner TO %I', current_user);
  END IF;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'the role fraud_desk_owner does not exist, or this role may not create it or join it'
      USING HINT = format('Have a DBA run: CREATE ROLE fraud_desk_owner NOLOGIN; GRANT fraud_desk_owner TO %I; '
                          'then migrate again.', current_user);
  WHEN unique_violation OR duplicate_object THEN
    NULL;  -- a migration of another database created it at the same moment
END $$;

-- What the desk's functions and the triggers they fire read and write (0013-0022).
GRANT SELECT ON fraud_cases, fraud_case_events, fraud_case_comments, fraud_labels, fraud_list_entries,
                fraud_list_version, fraud_suppressions, fraud_proposals, audit_log, audit_chain
  TO fraud_desk_owner;
GRANT INSERT ON fraud_case_comments, fraud_labels, fraud_list_entries, fraud_list_version, fraud_suppressions,
                fraud_proposals, audit_log
  TO fraud_desk_owner;
GRANT UPDATE ON fraud_cases, fraud_list_version, fraud_proposals, audit_chain TO fraud_desk_owner;
-- An entry or a suppression only ends: what it holds and when it counts stay as added.
GRANT UPDATE (ended_at, ended_version, ended_by) ON fraud_list_entries, fraud_suppressions TO fraud_desk_owner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO fraud_desk_owner;
-- The helpers they call, some closed to PUBLIC (fraud_desk_lowers, …): only their owner could.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'fraud\_%' AND NOT p.prosecdef
             AND p.prokind = 'f' AND p.prorettype <> 'trigger'::regtype
  LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO fraud_desk_owner', f);
  END LOOP;
END $$;

-- ALTER ... OWNER asks a non-superuser for the new owner's CREATE on the schema, for that
-- moment only.
DO $$
DECLARE
  f regprocedure;
  superuser boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
  IF NOT superuser THEN
    GRANT CREATE ON SCHEMA public TO fraud_desk_owner;
  END IF;
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'fraud\_%' AND p.prosecdef
             AND p.proname <> 'fraud_release_stalled_owner'
  LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO fraud_desk_owner', f);
  END LOOP;
  IF NOT superuser THEN
    REVOKE CREATE ON SCHEMA public FROM fraud_desk_owner;
  END IF;
END $$;

DO $$
BEGIN
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
    RAISE NOTICE 'fraud_release_stalled_owner() stays owned by %: granting pg_read_all_stats and '
                 'pg_signal_backend to a role of its own takes a superuser', current_user;
    RETURN;
  END IF;
  BEGIN
    CREATE ROLE fraud_stall_release NOLOGIN;
  EXCEPTION
    WHEN unique_violation OR duplicate_object THEN
      NULL;  -- made by another database's migration
  END;
  GRANT pg_read_all_stats, pg_signal_backend TO fraud_stall_release;
  GRANT SELECT ON consumer_offsets TO fraud_stall_release;
  ALTER FUNCTION fraud_release_stalled_owner(text, text, integer, interval) OWNER TO fraud_stall_release;
END $$;
