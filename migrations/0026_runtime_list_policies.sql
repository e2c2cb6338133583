-- Who may add to a runtime list, and for how long, declared with the list in the rules file
-- (issue 29: the lead check was a name prefix, allow_). `fraud-consumer migrate` records the
-- rules file's declarations here as the tables' owner; the console's roles only read them.
-- A list without a row keeps what 0014-0022 made of it: any analyst adds, for as long as asked
-- (up to 3650 days); an allow_ list's entry still takes a second lead (four eyes, 0022).
-- A policy holds for entries added from then on: one tightened later does not end or shorten
-- the entries already in force.
--
-- Each CREATE TRIGGER takes its table's SHARE ROW EXCLUSIVE lock for a moment: the console's
-- changes wait for it, batches (which only read these tables) do not; given up after 5 s.
SET LOCAL lock_timeout = '5s';
CREATE TABLE fraud_list_policies (
  list_name    text        PRIMARY KEY CHECK (list_name ~ '^[a-z][a-z0-9_]{0,62}$'),
  writer       text        NOT NULL DEFAULT 'analyst' CHECK (writer IN ('analyst', 'lead')),
  longest_days integer     CHECK (longest_days BETWEEN 1 AND 3650),  -- NULL: no limit of its own
  recorded_at  timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON fraud_list_policies TO fraud_console, fraud_desk_owner;

-- Refuses (42501) an addition to `p_list` by a login that is not a lead's when the list's
-- writer is lead, and (22023) one that lives `p_life` (NULL: until ended) when that is longer
-- than the list keeps an entry.
CREATE FUNCTION fraud_list_policy_require(p_list text, p_life interval)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  policy fraud_list_policies%ROWTYPE;
BEGIN
  SELECT * INTO policy FROM fraud_list_policies WHERE list_name = p_list;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  IF policy.writer = 'lead' AND NOT pg_has_role(session_user, 'fraud_console_lead', 'MEMBER') THEN
    RAISE EXCEPTION 'only a lead may add to %', p_list USING ERRCODE = '42501';
  END IF;
  IF policy.longest_days IS NOT NULL AND (p_life IS NULL OR p_life > policy.longest_days * interval '1 day') THEN
    RAISE EXCEPTION '% keeps an entry at most % days: give it days from 1 to %', p_list, policy.longest_days,
      policy.longest_days USING ERRCODE = '22023';
  END IF;
END $$;
REVOKE EXECUTE ON FUNCTION fraud_list_policy_require(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fraud_list_policy_require(text, interval) TO fraud_desk_owner;

-- Checked on the entry itself, whichever function or approval inserts it, so no path around
-- it through the desk's functions remains (an approval is made in a lead's session).
CREATE FUNCTION fraud_list_policy_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  PERFORM fraud_list_policy_require(NEW.list_name, NEW.expires_at - NEW.created_at);
  RETURN NEW;
END $$;
CREATE TRIGGER fraud_list_entries_policy BEFORE INSERT ON fraud_list_entries
  FOR EACH ROW EXECUTE FUNCTION fraud_list_policy_check();
-- Fired whatever session_replication_role says, as the audit's triggers are (0018).
ALTER TABLE fraud_list_entries ENABLE ALWAYS TRIGGER fraud_list_entries_policy;

-- An addition to an allow_ list is proposed and made by a second lead's approval (0022), in
-- the approver's session: so the writer is checked when it is proposed too, or an analyst
-- and one lead would add to a leads-only list. A proposal the list's longest life would
-- refuse at approval is refused at once.
CREATE FUNCTION fraud_list_policy_check_proposal()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  IF NEW.action = 'list.add' THEN
    PERFORM fraud_list_policy_require(NEW.request ->> 'list', (NEW.request ->> 'days')::integer * interval '1 day');
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fraud_proposals_list_policy BEFORE INSERT ON fraud_proposals
  FOR EACH ROW EXECUTE FUNCTION fraud_list_policy_check_proposal();
ALTER TABLE fraud_proposals ENABLE ALWAYS TRIGGER fraud_proposals_list_policy;
REVOKE EXECUTE ON FUNCTION fraud_list_policy_check(), fraud_list_policy_check_proposal() FROM PUBLIC;
