-- The tables belong to a role that cannot log in, and the daily prune runs as a role that may
-- only keep the history's partitions and rotate the dedup generations (issue 29).
--
-- Until now the tables' owner was whoever migrated: a login (in the quickstart, the superuser)
-- whose credentials the daily `store prune` job held too. An owner may disable the audit's
-- triggers (DDL), so every machine that ran the job held the power to rewrite the audit.
--
-- - fraud_owner (NOLOGIN) owns every table, view, sequence, type and function of the schema
--   that the migrating role owned, except the SECURITY DEFINER functions, which stay with the
--   roles made for them (0025). The migrating role is a member: `fraud-consumer migrate` runs
--   every later migration as fraud_owner (store/migrations.cpp), and a DBA acts as the owner
--   only through that membership.
-- - fraud_maintenance (NOLOGIN) may run fraud_history_maintain() and fraud_dedup_rotate(),
--   which fraud_owner owns, and nothing else. `store prune` calls them whoever runs it; its
--   login (postgres.maintenance_url) need be a member of fraud_maintenance only. It cannot
--   read an event, touch the audit, a label, a case or a list, or change a table; and it
--   cannot forget sooner than the retention `migrate` recorded in fraud_retention (from
--   retention.days), judged by the database's clock: a stolen maintenance login can neither
--   empty the history nor the dedup ids' memory.
--
-- Each ALTER ... OWNER takes its table's ACCESS EXCLUSIVE lock, held until this migration
-- commits (a second or two): batches and the console wait for it. Given up after 5 s on a
-- lock another transaction holds (run migrate again).
SET LOCAL lock_timeout = '5s';

-- Roles are cluster-wide: a migration of another database may create one at the same moment.
-- Only the creation is forgiven that; the grants below are this database's and must hold.
DO $$
DECLARE
  wanted text;
BEGIN
  FOREACH wanted IN ARRAY ARRAY['fraud_owner', 'fraud_maintenance'] LOOP
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = wanted) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', wanted);
      END IF;
    EXCEPTION
      WHEN unique_violation OR duplicate_object THEN
        NULL;
    END;
    -- A role made beforehand that could log in, or do anything, would be handed the tables.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = wanted AND (rolcanlogin OR rolsuper OR rolbypassrls)) THEN
      RAISE EXCEPTION 'the role % exists and can log in or is a superuser: it must be NOLOGIN', wanted;
    END IF;
  END LOOP;
END $$;

DO $$
BEGIN
  IF NOT pg_has_role(current_user, 'fraud_owner', 'MEMBER') THEN
    EXECUTE format('GRANT fraud_owner TO %I', current_user);
  END IF;
  -- Later migrations, run as fraud_owner, replace the desk's functions (0025's owner).
  IF NOT pg_has_role('fraud_owner', 'fraud_desk_owner', 'MEMBER') THEN
    GRANT fraud_desk_owner TO fraud_owner;
  END IF;
  -- To own tables (and, for a migrating role that is no superuser, to be given them). Without
  -- the grant option this is only a warning, so it is checked.
  GRANT USAGE, CREATE ON SCHEMA public TO fraud_owner;
  IF NOT has_schema_privilege('fraud_owner', 'public', 'CREATE') THEN
    RAISE EXCEPTION insufficient_privilege;
  END IF;
EXCEPTION
  WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'this role may not make fraud_owner and fraud_maintenance, join fraud_owner, or let it '
                    'create in the schema'
      USING HINT = format('Have a DBA run: CREATE ROLE fraud_owner NOLOGIN; CREATE ROLE fraud_maintenance NOLOGIN; '
                          'GRANT fraud_owner TO %I; GRANT fraud_desk_owner TO fraud_owner; '
                          'GRANT USAGE, CREATE ON SCHEMA public TO fraud_owner; then migrate again.', current_user);
END $$;

DO $$
DECLARE
  me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
  r record;
BEGIN
  -- Tables (partitions included), views and sequences of their own; a sequence a column owns
  -- follows its table.
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relowner = me
             AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                       AND d.deptype = 'e')  -- an extension's
             AND NOT (c.relkind = 'S' AND EXISTS (SELECT FROM pg_depend d
                                                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                                    AND d.deptype IN ('a', 'i')))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO fraud_owner',
                   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
           WHERE p.pronamespace = 'public'::regnamespace AND p.proowner = me AND NOT p.prosecdef
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                                                       AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO fraud_owner', r.name);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t
           WHERE t.typnamespace = 'public'::regnamespace AND t.typowner = me AND t.typtype IN ('d', 'e', 'r')
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                                                       AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO fraud_owner', CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name);
  END LOOP;
END $$;

-- The retention the bank configured (retention.days), recorded by `fraud-consumer migrate`
-- (store/retention.cpp). The maintenance functions never forget sooner than it says, judged by
-- the database's clock, whatever their caller asks. Until migrate records it, 0: keep everything.
CREATE TABLE fraud_retention (
  only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
  days        integer     NOT NULL CHECK (days >= 0),  -- 0: keep every day and every dedup id
  recorded_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO fraud_retention (days) VALUES (0);

-- The history's day partitions (store/retention.cpp decides which days; this does them):
-- make those of [p_first, p_end) and of the days in [p_horizon, p_end) whose rows wait in the
-- default partition, moving those rows in first (PostgreSQL refuses a partition whose range
-- the default partition still holds); with a horizon, drop the partitions of days that end by
-- it and delete the default partition's rows before it. In one transaction, with writers held
-- back while the partitions change: a row routed to the default partition just before its
-- day's partition attaches would otherwise land on the wrong side of it. Refused: a horizon
-- the recorded retention still keeps, and days beyond a century back or 800 days ahead (each
-- is a table). What it makes or drops is named in public: an unqualified CREATE would go to
-- the first schema of the pinned search_path, pg_catalog.
CREATE FUNCTION fraud_history_maintain(p_first date, p_end date, p_horizon date)
RETURNS TABLE (created text[], dropped text[], rows_moved bigint, rows_expired bigint)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'
AS $$
DECLARE
  today date := (now() AT TIME ZONE 'UTC')::date;
  kept integer := (SELECT days FROM fraud_retention);
  existing date[];
  each_day date;
  part text;
  moved bigint;
BEGIN
  IF p_first IS NULL OR p_end IS NULL OR p_end < p_first OR p_first < today - 36600 OR p_end > today + 800 THEN
    RAISE EXCEPTION 'the days to partition, % to %, are not within a century back and 800 days ahead', p_first, p_end
      USING ERRCODE = '22023';
  END IF;
  -- A caller whose clock is just past midnight before the database's (a cron job at 00:00)
  -- asks for one day more than the database's day allows: it gets the day allowed.
  IF p_horizon = today - kept AND kept > 0 THEN
    p_horizon := p_horizon - 1;
  END IF;
  IF p_horizon IS NOT NULL AND (kept = 0 OR p_horizon > today - (kept + 1)) THEN
    RAISE EXCEPTION 'dropping the history before % would forget days the recorded retention (% days, 0: all) keeps',
                    p_horizon, kept
      USING ERRCODE = '22023', HINT = 'Run fraud-consumer migrate with the configuration whose retention.days prune uses.';
  END IF;
  created := '{}';
  dropped := '{}';
  rows_moved := 0;
  rows_expired := 0;
  LOCK TABLE transactions IN EXCLUSIVE MODE;
  SELECT coalesce(array_agg(to_date(right(c.relname, 8), 'YYYYMMDD')), '{}') INTO existing
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = 'transactions'::regclass AND c.relname ~ '^transactions_p[0-9]{8}$';
  FOR each_day IN
    SELECT d::date FROM generate_series(p_first::timestamp, (p_end - 1)::timestamp, interval '1 day') d
    UNION
    SELECT DISTINCT (t.occurred_at AT TIME ZONE 'UTC')::date FROM transactions_default t
     WHERE t.occurred_at >= coalesce(p_horizon, '-infinity'::date)::timestamp AT TIME ZONE 'UTC'
       AND t.occurred_at < p_end::timestamp AT TIME ZONE 'UTC'
    ORDER BY 1
  LOOP
    CONTINUE WHEN each_day = ANY (existing);
    part := 'transactions_p' || to_char(each_day, 'YYYYMMDD');
    EXECUTE format('CREATE TABLE public.%I (LIKE public.transactions INCLUDING DEFAULTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM transactions_default WHERE occurred_at >= $1 AND occurred_at < $2 '
                   'RETURNING *) INSERT INTO public.%I SELECT * FROM moved', part)
      USING each_day::timestamp AT TIME ZONE 'UTC', (each_day + 1)::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS moved = ROW_COUNT;
    rows_moved := rows_moved + moved;
    EXECUTE format('ALTER TABLE public.transactions ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)', part,
                   each_day::timestamp AT TIME ZONE 'UTC', (each_day + 1)::timestamp AT TIME ZONE 'UTC');
    created := created || part;
  END LOOP;
  IF p_horizon IS NOT NULL THEN
    FOREACH each_day IN ARRAY existing LOOP
      CONTINUE WHEN each_day + 1 > p_horizon;
      part := 'transactions_p' || to_char(each_day, 'YYYYMMDD');
      EXECUTE format('DROP TABLE public.%I', part);
      dropped := dropped || part;
    END LOOP;
    DELETE FROM transactions_default WHERE occurred_at < p_horizon::timestamp AT TIME ZONE 'UTC';
    GET DIAGNOSTICS rows_expired = ROW_COUNT;
  END IF;
  RETURN NEXT;
END $$;

-- The dedup ids' older generation emptied and made current, once the current one is as old as
-- the retention (p_retention_days, and never less than the recorded one) by the database's
-- clock (0007). Not due: said at once, without the gate. Due: the exclusive gate waits for
-- every batch in flight (each holds it shared) and holds new ones back until the switch
-- commits, so no two batches ever disagree on which slot is current; the caller's
-- lock_timeout bounds the wait.
CREATE FUNCTION fraud_dedup_rotate(p_retention_days integer)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET TimeZone = 'UTC'  -- days, not a local day that daylight saving shortens
AS $$
DECLARE
  kept integer := (SELECT days FROM fraud_retention);
  generation_age interval;
  slot integer;
BEGIN
  IF p_retention_days IS NULL OR p_retention_days < 1 THEN
    RAISE EXCEPTION 'a rotation needs a retention of at least a day' USING ERRCODE = '22023';
  END IF;
  IF kept = 0 THEN
    RAISE EXCEPTION 'the recorded retention keeps every dedup id'
      USING ERRCODE = '22023', HINT = 'Run fraud-consumer migrate with the configuration whose retention.days prune uses.';
  END IF;
  generation_age := make_interval(days => greatest(p_retention_days, kept));
  IF NOT EXISTS (SELECT FROM dedup_generation WHERE started_at <= now() - generation_age) THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(1718770273, 1);  -- store/dedup_gate.h
  SELECT current_slot INTO slot FROM dedup_generation WHERE started_at <= now() - generation_age;
  IF NOT FOUND THEN
    RETURN false;  -- another prune rotated while this one waited
  END IF;
  EXECUTE format('TRUNCATE public.%I', 'processed_events_slot' || (1 - slot));
  UPDATE dedup_generation SET current_slot = 1 - slot, started_at = now();
  RETURN true;
END $$;

ALTER FUNCTION fraud_history_maintain(date, date, date) OWNER TO fraud_owner;
ALTER FUNCTION fraud_dedup_rotate(integer) OWNER TO fraud_owner;
ALTER TABLE fraud_retention OWNER TO fraud_owner;
REVOKE EXECUTE ON FUNCTION fraud_history_maintain(date, date, date), fraud_dedup_rotate(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_history_maintain(date, date, date), fraud_dedup_rotate(integer) TO fraud_maintenance;
