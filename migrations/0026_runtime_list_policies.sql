-- Who may add to a runtime list, and for how long, declared with the list in the rules file
-- (issue 29: the lead check was a name prefix, allow_). `fraud-consumer migrate` records the
-- rules file's declarations here as the tables' owner; the console's roles only read them.
-- A list without a row keeps what 0014-0022 made of it: any analyst adds, for as long as asked
-- (up to 3650 days); an allow_ list's entry still takes a second lead (four eyes, 0022).
CREATE TABLE fraud_list_policies (
  list_name    text        PRIMARY KEY CHECK (list_name ~ '^[a-z][a-z0-9_]{0,62}$'),
  writer       text        NOT NULL DEFAULT 'analyst' CHECK (writer IN ('analyst', 'lead')),
  longest_days integer     CHECK (longest_days BETWEEN 1 AND 3650),  -- NULL: no limit of its own
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON fraud_list_policies TO fraud_console, fraud_desk_owner;

-- Checked on the entry itself, whichever function or approval inserts it, so no path around
-- it through the desk's functions remains. Refuses (42501) an addition by a login that is not
-- a lead's to a list whose writer is lead (an approval is made by a lead's login), and (22023)
-- an entry without an end, or longer, on a list with a longest life.
CREATE FUNCTION fraud_list_policy_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  policy fraud_list_policies%ROWTYPE;
BEGIN
  SELECT * INTO policy FROM fraud_list_policies WHERE list_name = NEW.list_name;
  IF NOT FOUND THEN
    RETURN NEW;
  END IF;
  IF policy.writer = 'lead' AND NOT pg_has_role(session_user, 'fraud_console_lead', 'MEMBER') THEN
    RAISE EXCEPTION 'only a lead may add to %', NEW.list_name USING ERRCODE = '42501';
  END IF;
  IF policy.longest_days IS NOT NULL
     AND (NEW.expires_at IS NULL OR NEW.expires_at > NEW.created_at + policy.longest_days * interval '1 day') THEN
    RAISE EXCEPTION '% keeps an entry at most % days: give it days from 1 to %', NEW.list_name, policy.longest_days,
      policy.longest_days USING ERRCODE = '22023';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fraud_list_entries_policy BEFORE INSERT ON fraud_list_entries
  FOR EACH ROW EXECUTE FUNCTION fraud_list_policy_check();
-- Fired whatever session_replication_role says, as the audit's triggers are (0018).
SET LOCAL lock_timeout = '5s';
ALTER TABLE fraud_list_entries ENABLE ALWAYS TRIGGER fraud_list_entries_policy;
